// The admin's release list (admin/releases/release/change_list.html); a file, not inline, for the CSP's script-src.
// Redraw the progress bars of queued and running releases every two seconds until they finish.
(function () {
  const url = document.currentScript.dataset.progressUrl;
  function pending() {
    return Array.from(document.querySelectorAll(".release-progress")).filter(
      (el) => el.dataset.status === "queued" || el.dataset.status === "running");
  }
  async function poll() {
    const rows = pending();
    if (!rows.length) return;
    let finished = false;
    try {
      const response = await fetch(url + "?ids=" + rows.map((el) => el.dataset.release).join(","), {credentials: "same-origin"});
      const payload = await response.json();
      for (const item of payload.releases) {
        const el = document.querySelector('.release-progress[data-release="' + item.id + '"]');
        if (!el) continue;
        if (item.status === "done") finished = true;  // reload once for the new counts
        el.dataset.status = item.status;
        el.querySelector("progress").value = Math.round(100 * item.progress);
        el.querySelector(".release-stage").textContent = item.status === "failed" ? item.error : (item.stage || item.status);
      }
    } catch (error) { /* the next poll tries again */ }
    if (finished && !pending().length) { window.location.reload(); return; }
    setTimeout(poll, 2000);
  }
  setTimeout(poll, 2000);
})();
