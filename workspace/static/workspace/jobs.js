// A job's page follows the job: its progress every second while it is queued or running, then the page again once
// it has ended (the server renders the result). Without JavaScript the page says to reload it.
(function () {
  "use strict";
  const job = document.getElementById("job");
  if (!job || !["queued", "running"].includes(job.dataset.status)) return;
  const bar = job.querySelector('[data-field="bar"]');
  const stage = job.querySelector('[data-field="stage"]');
  const status = job.querySelector('[data-field="status"]');

  function show(data) {
    status.textContent = data.status;
    status.className = "badge job-" + data.status;
    const progress = data.progress;
    if (!progress) return;
    if (progress.total) {
      bar.max = progress.total;
      bar.value = progress.done;
    }
    stage.textContent = progress.stage + (progress.total ? " · " + progress.done + " of " + progress.total : "");
  }

  async function poll() {
    try {
      const response = await fetch(job.dataset.live, {headers: {Accept: "application/json"}, cache: "no-store",
                                                       credentials: "same-origin"});
      if (response.ok) {
        const data = await response.json();
        if (data.status === "done" || data.status === "failed") {
          window.location.reload();
          return;
        }
        show(data);
      }
    } catch (error) {
      // A network hiccup: try again at the next tick.
    }
    window.setTimeout(poll, 1000);
  }
  window.setTimeout(poll, 500);
})();
