// The evaluation report page: follows a job started from the page (its progress, then its run).
(function () {
  "use strict";
  function follow(section) {
    var status = section.querySelector(".job-status");
    var bar = section.querySelector("progress");
    var message = section.querySelector(".job-message");
    var link = section.querySelector(".job-run");
    function poll() {
      fetch(section.dataset.jobUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.json(); })
        .then(function (job) {
          section.dataset.status = job.status;
          status.textContent = job.status;
          bar.value = job.progress;
          message.textContent = job.message;
          if (job.status === "done" || job.status === "failed") {
            if (job.run_id) {
              link.hidden = false;
              link.href = link.href.split("?")[0] + "?runs=" + job.run_id;
              link.querySelector("span").textContent = job.run_id;
            }
            var button = document.querySelector(".start-evaluation button");
            if (button) button.disabled = false;
            return;
          }
          setTimeout(poll, 1000);
        })
        .catch(function () { setTimeout(poll, 3000); });
    }
    if (section.dataset.status === "queued" || section.dataset.status === "running") poll();
  }
  function start() { document.querySelectorAll(".evaluation-job").forEach(follow); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();
