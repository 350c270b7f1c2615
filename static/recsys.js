/*! recsys.js 2.0.0: the recommendation client for shop pages. An ES module; no dependencies, no build step.
 *
 *   import { RecSysClient } from "/static/recsys.js";
 *   const rs = new RecSysClient();                  // this storefront's same-origin endpoints (/storefront/...)
 *   const answer = await rs.recommendations("similar", { item: "sku-1", limit: 8, surface: "pdp" });
 *   rs.render(container, answer, { surface: "pdp" });   // cards; logs impressions (seen) and clicks
 *   rs.addToCart({ itemId: "sku-1", recommendationId, surface: "pdp", position: 2 });
 *
 * What it does (docs/demo.md, "The JS client", is the reference):
 *   - recommendation calls: `recommendations(kind, params)`, kinds user | trending | similar |
 *     bought_together | cart | search; the answer is the API's ({recommendation_id, scenario, items}).
 *   - impressions: `observe(container, answer)` reports the positions that were really on screen (an
 *     IntersectionObserver: at least half of a card visible for IMPRESSION_MS), per recommendation_id.
 *   - events: `click`, `view`, `addToCart`, `purchase`, or `track(event)`, each with the recommendation_id,
 *     surface and 1-based position of the list it came from; every event gets a unique event_id (the
 *     server's idempotency key), so a retried batch is never counted twice.
 *   - batching with retry: events and impressions are queued and sent in batches (at most `batchSize`, or
 *     every `flushMs`); a network error, 429 or 5xx is retried with exponential backoff (`retries` times),
 *     a 4xx is not (the answer names the bad field); the queue is flushed with `keepalive` when the page
 *     is hidden, so nothing is lost on navigation.
 *   - outside this storefront: pass `endpoints` (URLs or functions) that point at your own proxy, which
 *     adds the Api-Key server-side and forwards to /api/v1 (never put an API key in a page).
 */

export const VERSION = "2.0.0";
export const IMPRESSION_MS = 300;

const DEFAULTS = {
  base: "/storefront",
  batchSize: 20, // the storefront accepts at most 20 events per request
  flushMs: 2000,
  retries: 4,
  retryMs: 500,
  timeoutMs: 1500, // how long a click waits for its event before navigating
};

function readCookie(name) {
  const match = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
  return match ? decodeURIComponent(match[1]) : "";
}

export function newEventId() {
  if (globalThis.crypto && globalThis.crypto.randomUUID) return globalThis.crypto.randomUUID();
  return Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 12);
}

/** A reason said for a person: the server's `reason_text` when it sent one, else a sentence built from
 *  `reason.type` (the API sends the type and the item id, not the title). */
export function reasonText(item) {
  if (item.reason_text) return item.reason_text;
  const type = item.reason && item.reason.type;
  const plain = {
    because_you_viewed: "Because you viewed a similar item",
    because_you_bought: "Because you bought a similar item",
    similar_to: "Similar to this item",
    bought_together: "Often bought together",
    viewed_together: "Often viewed together",
    trending: "Trending now",
    new_arrival: "New arrival",
    matches_query: "Matches your search",
    promoted: "Featured",
    recommended: "Picked for you",
  };
  return (type && plain[type]) || "";
}

export class RecSysClient {
  /**
   * @param {object} [options]
   * @param {string} [options.base="/storefront"] prefix of the same-origin endpoints
   * @param {object} [options.endpoints] override: {recommendations: (kind, params) => url, events: url,
   *   impressions: url | null}; impressions null = not sent (e.g. a proxy to /api/v1 only)
   * @param {object} [options.headers] extra request headers (e.g. for your proxy)
   * @param {object} [options.identity] {user_id, session_id} added to events (a proxy to /api/v1 needs
   *   them; this storefront sets them from the session and ignores these)
   * @param {(id: string) => string} [options.itemUrl] link of an item's page
   */
  constructor(options = {}) {
    this.options = { ...DEFAULTS, ...options };
    const base = this.options.base;
    this.endpoints = {
      recommendations: (kind, params) => `${base}/recommendations/${encodeURIComponent(kind)}?${params}`,
      events: `${base}/events`,
      impressions: `${base}/impressions`,
      ...(options.endpoints || {}),
    };
    this.itemUrl = options.itemUrl || ((id) => "/items/" + encodeURIComponent(id));
    this.fetch = options.fetch || globalThis.fetch.bind(globalThis);
    this.events = [];
    this.seen = new Map(); // recommendation_id -> Set of positions not sent yet
    this.stats = { sent: 0, retried: 0, dropped: 0 };
    this._timer = null;
    this._observer = null;
    this._inflight = new Set();
    if (typeof document !== "undefined") {
      // the page is going away (navigation, tab closed or hidden): send what is queued, with keepalive
      document.addEventListener("visibilitychange", () => {
        if (document.visibilityState === "hidden") this.flush({ keepalive: true });
      });
      globalThis.addEventListener("pagehide", () => this.flush({ keepalive: true }));
    }
  }

  _headers(json) {
    const headers = { Accept: "application/json", ...(this.options.headers || {}) };
    if (json) headers["Content-Type"] = "application/json";
    const csrf = this.options.csrfToken ?? (typeof document !== "undefined" ? readCookie("csrftoken") : "");
    if (json && csrf) headers["X-CSRFToken"] = csrf;
    return headers;
  }

  /** A list: resolves with the answer {recommendation_id, scenario, items}; rejects on an HTTP error. */
  async recommendations(kind, params = {}) {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) {
      if (value !== undefined && value !== null && value !== "") query.set(key, Array.isArray(value) ? value.join(",") : value);
    }
    const response = await this.fetch(this.endpoints.recommendations(kind, query.toString()), {
      credentials: "same-origin",
      headers: this._headers(false),
    });
    if (!response.ok) throw new Error(`recommendations ${kind}: HTTP ${response.status}`);
    return response.json();
  }

  /** Queue one event (sent with the next batch). `event_id` and `timestamp` are added. */
  track(event) {
    this.events.push({
      event_id: newEventId(),
      timestamp: new Date().toISOString(),
      ...(this.options.identity || {}),
      ...event,
    });
    if (this.events.length >= this.options.batchSize) this.flush();
    else this._schedule();
  }

  _origin(kind, { itemId, recommendationId, surface, position, ...more }) {
    const event = { event_type: kind, item_id: itemId, ...more };
    if (recommendationId) Object.assign(event, { recommendation_id: recommendationId, surface, position });
    return event;
  }

  view(details) { this.track(this._origin("view", details)); }
  click(details) { this.track(this._origin("click", details)); }
  addToCart(details) { this.track(this._origin("add_to_cart", details)); }
  /** Purchases normally come from the shop's order system; this storefront refuses them from browsers. */
  purchase(details) { this.track(this._origin("purchase", details)); }

  /** Record that these positions (1-based) of a served list were seen. */
  impression(recommendationId, positions) {
    if (!this.endpoints.impressions || !recommendationId) return;
    const set = this.seen.get(recommendationId) || new Set();
    positions.forEach((p) => set.add(p));
    this.seen.set(recommendationId, set);
    this._schedule();
  }

  /** Watch the cards of `container` ([data-position] children of a list with `recommendationId`): a card
   *  at least half visible for IMPRESSION_MS is reported once as seen. */
  observe(container, recommendationId) {
    const cards = container.querySelectorAll("[data-position]");
    if (!recommendationId || !cards.length) return;
    if (typeof IntersectionObserver === "undefined") {
      this.impression(recommendationId, [...cards].map((c) => Number(c.dataset.position)));
      return;
    }
    if (!this._observer) {
      const timers = new WeakMap();
      this._observer = new IntersectionObserver((entries) => {
        for (const entry of entries) {
          const card = entry.target;
          if (entry.isIntersecting) {
            timers.set(card, setTimeout(() => {
              this._observer.unobserve(card);
              this.impression(card.dataset.recommendationId, [Number(card.dataset.position)]);
            }, IMPRESSION_MS));
          } else {
            clearTimeout(timers.get(card));
          }
        }
      }, { threshold: 0.5 });
    }
    cards.forEach((card) => {
      card.dataset.recommendationId = recommendationId;
      this._observer.observe(card);
    });
  }

  _schedule() {
    if (this._timer === null) this._timer = setTimeout(() => this.flush(), this.options.flushMs);
  }

  /** Send everything queued now. Resolves when everything sent so far is stored (or given up), retries
   *  included; never rejects: tracking must never break the page. */
  async flush({ keepalive = false } = {}) {
    clearTimeout(this._timer);
    this._timer = null;
    const sends = [];
    while (this.events.length) {
      const batch = this.events.splice(0, this.options.batchSize);
      sends.push(this._send(this.endpoints.events, { events: batch }, keepalive));
    }
    if (this.seen.size && this.endpoints.impressions) {
      const impressions = [...this.seen].map(([id, set]) => ({ recommendation_id: id, positions: [...set].sort((a, b) => a - b) }));
      this.seen.clear();
      for (let i = 0; i < impressions.length; i += this.options.batchSize) {
        sends.push(this._send(this.endpoints.impressions, { impressions: impressions.slice(i, i + this.options.batchSize) }, keepalive));
      }
    }
    // also wait for batches sent earlier and still being retried: after flush(), nothing is pending
    return Promise.all([...sends, ...this._inflight]);
  }

  _send(url, body, keepalive) {
    const sending = this._sendWithRetry(url, body, keepalive);
    this._inflight.add(sending);
    sending.finally(() => this._inflight.delete(sending));
    return sending;
  }

  async _sendWithRetry(url, body, keepalive) {
    for (let attempt = 0; ; attempt++) {
      let status = 0;
      try {
        const response = await this.fetch(url, {
          method: "POST",
          credentials: "same-origin",
          keepalive,
          headers: this._headers(true),
          body: JSON.stringify(body),
        });
        status = response.status;
        if (response.ok || (status >= 400 && status < 500 && status !== 429)) {
          // 2xx: stored (duplicates counted as such); 4xx: the answer names the bad field, a retry would not help
          this.stats.sent += 1;
          return response.json().catch(() => null);
        }
      } catch (error) {
        status = 0; // network error: retry
      }
      if (attempt >= this.options.retries) {
        this.stats.dropped += 1;
        return null;
      }
      this.stats.retried += 1;
      await new Promise((resolve) => setTimeout(resolve, this.options.retryMs * 2 ** attempt));
    }
  }

  /** Draw `answer` as cards into `container`, observe impressions, and log a click (sent before the
   *  navigation, waiting at most timeoutMs) with the list's recommendation_id, surface and position. */
  render(container, answer, { surface = "" } = {}) {
    container.replaceChildren();
    container.dataset.recommendationId = answer.recommendation_id;
    if (!answer.items.length) {
      const empty = document.createElement("p");
      empty.className = "empty";
      empty.textContent = "Nothing to recommend yet.";
      container.append(empty);
      return;
    }
    answer.items.forEach((item, index) => {
      const position = index + 1;
      const href = this.itemUrl(item.id) + "?rec=" + encodeURIComponent(answer.recommendation_id) +
        "&pos=" + position + "&surface=" + encodeURIComponent(surface);
      const card = document.createElement("a");
      card.className = "card";
      card.href = href;
      card.dataset.itemId = item.id;
      card.dataset.position = String(position);
      const img = document.createElement("img");
      img.alt = "";
      img.loading = "lazy";
      if (item.image_url) img.src = item.image_url;
      card.append(img);
      const title = document.createElement("span");
      title.className = "title";
      title.textContent = item.title;
      card.append(title);
      if (item.price !== null && item.price !== undefined) {
        const price = document.createElement("span");
        price.className = "price";
        price.textContent = item.price;
        card.append(price);
      }
      const why = reasonText(item);
      if (why) {
        const reason = document.createElement("span");
        reason.className = "reason";
        reason.textContent = why;
        card.append(reason);
      }
      this.linkClicks(card, { itemId: item.id, recommendationId: answer.recommendation_id, surface, position });
      container.append(card);
    });
    this.observe(container, answer.recommendation_id);
  }

  /** Log a click on `link` before following it (a modified click opens a tab: logged, not delayed). */
  linkClicks(link, details) {
    link.addEventListener("click", (event) => {
      this.click(details);
      if (event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
      event.preventDefault();
      const timeout = new Promise((resolve) => setTimeout(resolve, this.options.timeoutMs));
      Promise.race([this.flush(), timeout]).then(() => { globalThis.location.href = link.href; });
    });
  }

  /** Fetch and draw the list a container describes: data-recsys (kind), data-surface, data-limit,
   *  data-item, data-exclude (comma-separated ids). Resolves with the answer (null when it failed). */
  async mount(container, extra = {}) {
    const kind = container.dataset.recsys;
    const surface = container.dataset.surface || kind;
    const params = { limit: container.dataset.limit, surface, item: container.dataset.item, exclude: container.dataset.exclude, ...extra };
    try {
      const answer = await this.recommendations(kind, params);
      this.render(container, answer, { surface });
      return answer;
    } catch (error) {
      container.replaceChildren();
      const p = document.createElement("p");
      p.className = "empty";
      p.textContent = "Recommendations are unavailable right now.";
      container.append(p);
      if (globalThis.console) console.warn(error);
      return null;
    }
  }

  /** The list a visitor arrived from (?rec=&pos=&surface= on an item page), as event details. */
  origin() {
    const query = new URLSearchParams(globalThis.location.search);
    if (!query.get("rec")) return {};
    return { recommendationId: query.get("rec"), surface: query.get("surface") || "",
             position: parseInt(query.get("pos"), 10) || undefined };
  }
}
