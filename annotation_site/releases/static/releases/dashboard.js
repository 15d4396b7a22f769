// The project dashboard (releases/dashboard.html), loaded while a job runs; a file, not inline, for the CSP's script-src.
// Follow the job's progress bar; once no job is left the page reloads with the new figures (or the failure).
(function () {
  const box = document.querySelector(".dashboard-job");
  async function poll() {
    try {
      const response = await fetch(box.dataset.jobUrl, {credentials: "same-origin"});
      const job = await response.json();
      if (job.status === "idle") { window.location.reload(); return; }
      box.dataset.jobStatus = job.status;
      box.querySelector("progress").value = job.percent;
      box.querySelector(".job-percent").textContent = job.percent + "%";
      box.querySelector(".job-message").textContent = job.status === "queued" ? "waiting for a worker" : job.message;
    } catch (error) { /* the next poll tries again */ }
    setTimeout(poll, 2000);
  }
  setTimeout(poll, 2000);
})();
