// The admin's "Upload images" page (admin/projects/project/upload.html); a file, not inline, for the CSP's script-src.
// One request per file, two at a time, so a large batch shows progress and one bad file costs only itself.
(function () {
  const form = document.getElementById("upload-form");
  const input = form.querySelector('input[type="file"]');
  form.addEventListener("submit", async function (event) {
    const files = Array.from(input.files);
    if (!files.length || !window.fetch) return;
    event.preventDefault();
    const token = form.querySelector("[name=csrfmiddlewaretoken]").value;
    const bar = document.getElementById("upload-bar");
    const status = document.getElementById("upload-status");
    const table = document.getElementById("upload-results");
    const body = table.querySelector("tbody");
    const counts = {imported: 0, duplicate: 0, rejected: 0};
    document.getElementById("upload-progress").hidden = false;
    table.hidden = false;
    body.textContent = "";
    bar.max = files.length; bar.value = 0;
    function row(line) {
      const tr = document.createElement("tr");
      tr.className = "import-" + line.outcome;
      for (const text of [line.name, line.outcome + (line.image_id ? " (#" + line.image_id + ")" : ""), line.detail]) {
        const td = document.createElement("td"); td.textContent = text; tr.appendChild(td);
      }
      body.appendChild(tr);
      counts[line.outcome] = (counts[line.outcome] || 0) + 1;
    }
    let next = 0;
    async function worker() {
      while (next < files.length) {
        const file = files[next++];
        const data = new FormData();
        data.append("csrfmiddlewaretoken", token);
        data.append("files", file);
        try {
          const response = await fetch(window.location.href, {method: "POST", body: data, headers: {"Accept": "application/json"}, credentials: "same-origin"});
          const payload = await response.json();
          if (response.ok) payload.lines.forEach(row);
          else row({name: file.name, outcome: "rejected", detail: JSON.stringify(payload.errors)});
        } catch (error) {
          row({name: file.name, outcome: "rejected", detail: "upload failed: " + error});
        }
        bar.value += 1;
        status.textContent = bar.value + " of " + files.length + " files";
      }
    }
    await Promise.all([worker(), worker()]);
    document.getElementById("upload-summary").textContent =
      counts.imported + " imported, " + counts.duplicate + " exact duplicates skipped, " + counts.rejected + " rejected";
  });
})();
