// django-admin-charts (admin_charts.js) fetches each chart's data as JavaScript and runs it by appending an
// inline <script>. The Content-Security-Policy refuses inline scripts without the page's nonce, so its
// global runScript is replaced by one that stamps the nonce this file was loaded with. Loaded after
// admin_charts.js (templates/admin/index.html).
(function () {
  "use strict";
  var nonce = document.currentScript.nonce;
  window.runScript = function (source) {
    var script = document.createElement("script");
    script.nonce = nonce;
    script.text = source;
    document.head.appendChild(script);
    document.head.removeChild(script);
  };
})();
