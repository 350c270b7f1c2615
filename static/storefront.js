// Wires the demo shop's pages to recsys.js: recommendation slots, the item page's view and add-to-cart.
(function () {
  "use strict";
  function start() {
    var rs = new RecSys({ base: "/storefront" });
    document.querySelectorAll("[data-recsys]").forEach(function (el) { rs.mount(el); });
    var page = document.querySelector("[data-recsys-item]");
    if (page) {
      var origin = rs.origin();
      rs.track([Object.assign({ event_type: "view", item_id: page.dataset.recsysItem }, origin)]);
      var button = document.querySelector("[data-recsys-cart]");
      if (button) {
        button.addEventListener("click", function () {
          rs.track([Object.assign({ event_type: "add_to_cart", item_id: button.dataset.recsysCart }, origin)])
            .then(function () { var done = document.querySelector(".added"); if (done) done.hidden = false; });
        });
      }
    }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();
