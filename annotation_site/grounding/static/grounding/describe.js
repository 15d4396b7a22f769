// The description page: tick the distortions the photo shows, each with a severity (number keys), write the
// detailed answer, submit with Enter. Nothing ticked means "no distortion".
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const holder = $("distortions");
  const detail = $("detail");

  let chosen = {};   // distortion key -> severity name, or null while ticked without one
  let active = 0;

  const task = window.GroundingTask({reset, payload, showErrors, onKey});
  const distortions = task.config.setup.distortions;
  const severities = task.config.setup.severities;

  function build() {
    $("severity-legend").textContent = severities.map((name, s) => `${(s + 1) % 10} ${name}`).join(" · ");
    distortions.forEach((distortion, index) => {
      const row = document.createElement("div");
      row.className = "distortion";
      row.dataset.key = distortion.key;
      row.dataset.index = index;
      const tick = document.createElement("label");
      tick.className = "tick";
      tick.innerHTML = '<input type="checkbox" tabindex="-1"> <span></span> <span class="chosen-severity"></span>';
      tick.querySelector("span").textContent = distortion.label;
      tick.querySelector("input").addEventListener("change", (e) => toggle(index, e.target.checked));
      row.appendChild(tick);
      const scale = document.createElement("div");
      scale.className = "options severities";
      severities.forEach((severity, s) => {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "option";
        button.tabIndex = -1;
        button.dataset.severity = severity;
        button.title = severity;
        button.textContent = String((s + 1) % 10);
        button.addEventListener("click", () => { setActive(index); rate(index, severity); });
        scale.appendChild(button);
      });
      row.appendChild(scale);
      const error = document.createElement("div");
      error.className = "row-error";
      row.appendChild(error);
      row.addEventListener("mousedown", () => setActive(index));
      holder.appendChild(row);
    });
  }

  function rowOf(index) { return holder.querySelector(`.distortion[data-index="${index}"]`); }

  function setActive(index) {
    active = Math.max(0, Math.min(distortions.length - 1, index));
    holder.querySelectorAll(".distortion").forEach((row) => row.classList.toggle("active", Number(row.dataset.index) === active));
    rowOf(active).scrollIntoView({block: "nearest"});
  }

  function renderRow(index) {
    const key = distortions[index].key;
    const row = rowOf(index);
    const ticked = key in chosen;
    row.classList.toggle("ticked", ticked);
    row.querySelector("input").checked = ticked;
    row.querySelectorAll(".option").forEach((b) => b.classList.toggle("selected", ticked && chosen[key] === b.dataset.severity));
    row.querySelector(".chosen-severity").textContent = ticked ? chosen[key] || "severity?" : "";
    row.querySelector(".row-error").textContent = "";
    const count = Object.keys(chosen).length;
    $("brief-summary").textContent = count ? `· ${count} ticked` : "· none ticked: no distortion";
  }

  function rate(index, severity) {
    chosen[distortions[index].key] = severity;
    renderRow(index);
  }

  function toggle(index, on) {
    const key = distortions[index].key;
    if (on) { if (!(key in chosen)) chosen[key] = null; }
    else delete chosen[key];
    renderRow(index);
  }

  function reset() {
    chosen = {};
    detail.value = "";
    $("detail-error").textContent = "";
    distortions.forEach((_, index) => renderRow(index));
    setActive(0);
  }

  function payload() {
    const missing = distortions.findIndex((d) => d.key in chosen && chosen[d.key] === null);
    if (missing >= 0) {
      setActive(missing);
      rowOf(missing).querySelector(".row-error").textContent = "choose how severe it is (number keys)";
      return null;
    }
    // In the order of the taxonomy, whatever the order they were ticked in.
    const brief = distortions.filter((d) => d.key in chosen).map((d) => ({distortion: d.key, severity: chosen[d.key]}));
    return {brief, detail: detail.value.trim()};
  }

  function showErrors(errors) {
    const rest = [];
    Object.entries(errors).forEach(([place, message]) => {
      const match = place.match(/^brief\[(\d+)\]/);
      if (place === "detail") $("detail-error").textContent = message;
      else if (match) {
        const sent = payload();
        const entry = sent && sent.brief[Number(match[1])];
        const index = entry ? distortions.findIndex((d) => d.key === entry.distortion) : -1;
        if (index >= 0) rowOf(index).querySelector(".row-error").textContent = message;
        else rest.push(`${place}: ${message}`);
      } else rest.push(`${place}: ${message}`);
    });
    return rest;
  }

  function onKey(event, typing) {
    if (typing) {
      if (event.key === "Escape") { event.target.blur(); event.preventDefault(); }
      else if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); task.submit(); }
      else if (event.key === "Tab" && event.shiftKey) { event.preventDefault(); event.target.blur(); setActive(distortions.length - 1); }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const number = /^[0-9]$/.test(event.key) ? (Number(event.key) + 9) % 10 : -1;
    if (number >= 0) { if (number < severities.length) rate(active, severities[number]); event.preventDefault(); }
    else if (event.key === "ArrowDown" || event.key === "j") { setActive(active + 1); event.preventDefault(); }
    else if (event.key === "ArrowUp" || event.key === "k") { setActive(active - 1); event.preventDefault(); }
    else if (event.key === " ") { toggle(active, !(distortions[active].key in chosen)); event.preventDefault(); }
    else if (event.key === "Delete" || event.key === "Backspace") { toggle(active, false); event.preventDefault(); }
    else if (event.key === "t" || event.key === "T" || (event.key === "Tab" && !event.shiftKey)) { detail.focus(); event.preventDefault(); }
    else if (event.key === "Enter") { event.preventDefault(); task.submit(); }
  }

  build();
  task.start();
})();
