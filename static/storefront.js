// Wires the demo shop's pages to the recsys.js client: recommendation slots, search results, the item
// page's view, add-to-cart and cart suggestions.
import { RecSysClient } from "./recsys.js";

const rs = new RecSysClient({ base: "/storefront" });
globalThis.recsys = rs; // for the browser tests and the curious: the client this page uses

async function mountAll() {
  const slots = [...document.querySelectorAll("[data-recsys]")];
  const answers = new Map();
  // a slot with data-exclude-from waits for that list and leaves its items out (home: trending under
  // "Recommended for you" does not repeat it, unless the catalog is too small for two lists)
  const independent = slots.filter((el) => !el.dataset.excludeFrom);
  await Promise.all(independent.map(async (el) => answers.set(el, await rs.mount(el))));
  await Promise.all(slots.filter((el) => el.dataset.excludeFrom).map(async (el) => {
    const other = document.querySelector(el.dataset.excludeFrom);
    const shown = other && answers.get(other);
    const answer = shown ? await rs.mount(el, { exclude: shown.items.map((i) => i.id).join(",") }) : null;
    // a catalog too small for two different lists: repeat rather than show nothing
    if (!answer || !answer.items.length) await rs.mount(el);
  }));
}

function wireSearchResults() {
  // server-rendered search results: the list is logged under data-recsys-served
  document.querySelectorAll("[data-recsys-served]").forEach((list) => {
    const rec = list.dataset.recsysServed;
    const surface = list.dataset.surface || "search";
    list.querySelectorAll("[data-position]").forEach((card) => {
      rs.linkClicks(card, { itemId: card.dataset.itemId, recommendationId: rec, surface, position: Number(card.dataset.position) });
    });
    rs.observe(list, rec);
  });
}

function wireItemPage() {
  const page = document.querySelector("[data-recsys-item]");
  if (!page) return;
  const origin = rs.origin();
  rs.view({ itemId: page.dataset.recsysItem, ...origin });
  rs.flush();
  const button = document.querySelector("[data-recsys-cart]");
  if (!button) return;
  button.addEventListener("click", async () => {
    rs.addToCart({ itemId: button.dataset.recsysCart, ...origin });
    await rs.flush();
    const done = document.querySelector(".added");
    if (done) done.hidden = false;
    const later = document.querySelector("[data-recsys-later]");
    if (later) {
      later.dataset.recsys = later.dataset.recsysLater;
      later.closest("section").hidden = false;
      await rs.mount(later);
    }
  });
}

function start() {
  mountAll();
  wireSearchResults();
  wireItemPage();
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
