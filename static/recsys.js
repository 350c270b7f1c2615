/*! recsys.js: the reference storefront's client. No dependencies, no build step, ~150 lines.
 *
 *   var rs = new RecSys({base: "/storefront"});           // same-origin endpoints, no API key in the page
 *   rs.mount(element)                                       // <div data-recsys="user|trending|similar"
 *                                                           //      data-surface="home" data-limit="8" data-item="ID">
 *   rs.recommendations("similar", {item: "ID", limit: 8, surface: "pdp"}).then(function (answer) { ... })
 *   rs.track([{event_type: "add_to_cart", item_id: "ID", recommendation_id: "...", surface: "pdp", position: 2}])
 *
 * Cards link to the item page with ?rec=<recommendation_id>&pos=<position>&surface=<surface>, so that an
 * add-to-cart on that page is attributed to the list it came from. Positions are 1-based.
 */
(function (global) {
  "use strict";

  function readCookie(name) {
    var match = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return match ? decodeURIComponent(match[1]) : "";
  }

  function eventId() {
    if (global.crypto && global.crypto.randomUUID) return global.crypto.randomUUID();
    return Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 12);
  }

  function RecSys(options) {
    options = options || {};
    this.base = options.base || "/storefront";
    this.itemUrl = options.itemUrl || function (id) { return "/items/" + encodeURIComponent(id); };
    this.csrfToken = options.csrfToken || readCookie("csrftoken");
  }

  RecSys.prototype.recommendations = function (kind, params) {
    var query = new URLSearchParams();
    Object.keys(params || {}).forEach(function (key) {
      if (params[key] !== undefined && params[key] !== null && params[key] !== "") query.set(key, params[key]);
    });
    return fetch(this.base + "/recommendations/" + encodeURIComponent(kind) + "?" + query.toString(), {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    }).then(function (response) {
      if (!response.ok) throw new Error("recommendations: HTTP " + response.status);
      return response.json();
    });
  };

  // Sends events; resolves with the server's answer (or null when the network failed: tracking must
  // never break the page). Waits at most `timeoutMs` (default 1500).
  RecSys.prototype.track = function (events, timeoutMs) {
    var body = JSON.stringify({
      events: events.map(function (e) { return Object.assign({ event_id: eventId() }, e); }),
    });
    var request = fetch(this.base + "/events", {
      method: "POST",
      credentials: "same-origin",
      keepalive: true,
      headers: { "Content-Type": "application/json", "X-CSRFToken": this.csrfToken },
      body: body,
    }).then(function (r) { return r.json(); }).catch(function () { return null; });
    var timeout = new Promise(function (resolve) { setTimeout(function () { resolve(null); }, timeoutMs || 1500); });
    return Promise.race([request, timeout]);
  };

  RecSys.prototype.render = function (container, answer, surface) {
    var self = this;
    container.innerHTML = "";
    container.dataset.recommendationId = answer.recommendation_id;
    if (!answer.items.length) {
      container.innerHTML = '<p class="empty">Nothing to recommend yet.</p>';
      return;
    }
    answer.items.forEach(function (item, index) {
      var position = index + 1;
      var href = self.itemUrl(item.id) + "?rec=" + encodeURIComponent(answer.recommendation_id) +
        "&pos=" + position + "&surface=" + encodeURIComponent(surface);
      var card = document.createElement("a");
      card.className = "card";
      card.href = href;
      card.dataset.itemId = item.id;
      card.dataset.position = String(position);
      if (item.image_url) {
        var img = document.createElement("img");
        img.src = item.image_url;
        img.alt = "";
        img.loading = "lazy";
        card.appendChild(img);
      } else {
        var ph = document.createElement("div");
        ph.className = "ph";
        ph.textContent = (item.title || "?").charAt(0);
        card.appendChild(ph);
      }
      var title = document.createElement("span");
      title.className = "title";
      title.textContent = item.title;
      card.appendChild(title);
      if (item.price !== null && item.price !== undefined) {
        var price = document.createElement("span");
        price.className = "price";
        price.textContent = item.price;
        card.appendChild(price);
      }
      if (item.reason && item.reason.type) {
        var reason = document.createElement("span");
        reason.className = "reason";
        reason.textContent = item.reason.type.replace(/_/g, " ");
        card.appendChild(reason);
      }
      card.addEventListener("click", function (event) {
        if (event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) {
          self.track([self._click(item, answer, surface, position)]);
          return;
        }
        event.preventDefault();
        self.track([self._click(item, answer, surface, position)]).then(function () {
          global.location.href = href;
        });
      });
      container.appendChild(card);
    });
  };

  RecSys.prototype._click = function (item, answer, surface, position) {
    return { event_type: "click", item_id: item.id, recommendation_id: answer.recommendation_id,
             surface: surface, position: position };
  };

  RecSys.prototype.mount = function (container) {
    var self = this;
    var kind = container.dataset.recsys;
    var surface = container.dataset.surface || kind;
    var params = { limit: container.dataset.limit, surface: surface, item: container.dataset.item };
    return this.recommendations(kind, params).then(function (answer) {
      self.render(container, answer, surface);
      return answer;
    }).catch(function (error) {
      container.innerHTML = '<p class="empty">Recommendations are unavailable right now.</p>';
      if (global.console) global.console.warn(error);
    });
  };

  // The recommendation a visitor arrived from (?rec=&pos=&surface= on the item page), if any.
  RecSys.prototype.origin = function () {
    var query = new URLSearchParams(global.location.search);
    if (!query.get("rec")) return {};
    return { recommendation_id: query.get("rec"), surface: query.get("surface") || "",
             position: parseInt(query.get("pos"), 10) || undefined };
  };

  global.RecSys = RecSys;
})(window);
