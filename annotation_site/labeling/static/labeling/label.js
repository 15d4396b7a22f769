// The labeling page: one photo, the schema's fields grouped by level, everything by keyboard.
// It talks to the rater API only (through core/taskkit.js), so the page and scripts follow the same rules.
"use strict";

(function () {
  const config = JSON.parse(document.getElementById("label-config").textContent);
  const LEVELS = ["low", "middle", "high", "overall"];
  const LEVEL_TITLES = {low: "Low level", middle: "Middle level", high: "High level", overall: "Overall"};
  const fields = LEVELS.flatMap((level) => config.schema.fields.filter((f) => f.level === level));
  const $ = (id) => document.getElementById(id);
  const form = $("fields");
  const photo = $("photo");
  const stage = $("stage");
  const task = TaskKit.page({
    show,
    photos: (assignment) => [assignment.image.url],
    invalid: (data) => { if (data.labels) showFieldErrors(data.labels); return Boolean(data.labels); },
    acknowledged: (data, goOn) => { if (data.feedback) showFeedback(data.feedback, goOn); else goOn(); },
    skipReasons: config.skipReasons,
    doneTexts: {
      done: "Every photo has all the labels it needs. Thank you!",
      daily_cap: "You reached today's limit for this project. Come back tomorrow.",
      lease_limit: "Finish the photo you have open first.",
      failed_qualification: "You did not pass the qualification round of this project.",
    },
  });
  const state = task.state;

  let active = 0;          // index of the highlighted field
  let values = {};         // key -> value
  let reasons = {};        // key -> reason text
  let zoomed = false;

  // ---------------------------------------------------------------- form
  function choiceList(field) {
    return field.choices.map((c, i) => ({value: c.value, label: c.label, help: c.help, key: String((i + 1) % 10), offScale: c.not_applicable}));
  }

  function scoreList(field) {
    const out = [];
    for (let v = field.min; v <= field.max; v++) out.push({value: v, label: String(v), key: String(v % 10)});
    return out;
  }

  function buildForm() {
    form.textContent = "";
    let level = null;
    fields.forEach((field, index) => {
      if (field.level !== level) {
        level = field.level;
        const heading = document.createElement("h3");
        heading.className = "level";
        heading.textContent = LEVEL_TITLES[level];
        form.appendChild(heading);
      }
      const box = document.createElement("div");
      box.className = "field";
      box.dataset.key = field.key;
      box.dataset.index = index;
      box.addEventListener("mousedown", () => setActive(index, false));
      const title = document.createElement("div");
      title.className = "field-title";
      title.innerHTML = '<span class="label"></span><span class="req"></span>';
      title.querySelector(".label").textContent = field.label;
      title.querySelector(".req").textContent = field.required ? "" : " (optional)";
      box.appendChild(title);

      if (field.kind === "ordinal" || field.kind === "nominal" || field.kind === "integer") {
        const options = field.kind === "integer" ? scoreList(field) : choiceList(field);
        const row = document.createElement("div");
        row.className = field.kind === "integer" ? "options scores" : "options";
        options.forEach((option) => {
          const button = document.createElement("button");
          button.type = "button";
          button.className = "option" + (option.offScale ? " off-scale" : "");
          button.dataset.value = JSON.stringify(option.value);
          button.title = option.help || "";
          button.innerHTML = "<kbd></kbd><span></span>";
          button.querySelector("kbd").textContent = options.length <= 10 ? option.key : "";
          button.querySelector("span").textContent = option.label;
          button.tabIndex = -1;
          button.addEventListener("click", () => choose(index, option.value));
          row.appendChild(button);
        });
        box.appendChild(row);
      } else if (field.kind === "continuous") {
        const input = document.createElement("input");
        input.type = "text";
        input.inputMode = "decimal";
        input.className = "number";
        input.placeholder = `${field.min} – ${field.max}` + (field.step ? `, step ${field.step}` : "");
        input.addEventListener("input", () => markAnswered(box, input.value.trim() !== ""));
        box.appendChild(input);
      } else {
        const input = document.createElement("input");
        input.type = "text";
        input.className = "text";
        input.maxLength = field.max_length || 2000;
        const suggestions = (config.suggestions || {})[field.key] || [];
        if (suggestions.length) {
          const list = document.createElement("datalist");
          list.id = "suggest-" + field.key;
          suggestions.forEach((text) => { const o = document.createElement("option"); o.value = text; list.appendChild(o); });
          box.appendChild(list);
          input.setAttribute("list", list.id);
        }
        input.addEventListener("input", () => markAnswered(box, input.value.trim() !== ""));
        box.appendChild(input);
      }
      if (field.reason) {
        const reason = document.createElement("textarea");
        reason.className = "reason";
        reason.rows = 2;
        reason.maxLength = field.reason.max_length;
        reason.placeholder = field.reason.label + (field.reason.required ? "" : " (optional)");
        reason.addEventListener("input", () => { reasons[field.key] = reason.value; });
        box.appendChild(reason);
      }
      const help = document.createElement("div");
      help.className = "help";
      help.hidden = true;
      help.appendChild(document.createTextNode(field.help || "No help for this field."));
      if ((field.anchors || []).length) {
        const anchors = document.createElement("ul");
        field.anchors.forEach((a) => { const li = document.createElement("li"); li.innerHTML = "<b></b> "; li.querySelector("b").textContent = String(a.value) + ":"; li.appendChild(document.createTextNode(a.example)); anchors.appendChild(li); });
        help.appendChild(anchors);
      }
      box.appendChild(help);
      const error = document.createElement("div");
      error.className = "field-error";
      box.appendChild(error);
      form.appendChild(box);
    });
  }

  function boxOf(index) { return form.querySelector(`.field[data-index="${index}"]`); }
  function markAnswered(box, answered) { box.classList.toggle("answered", answered); }

  function setActive(index, focusInput = true) {
    active = Math.max(0, Math.min(fields.length - 1, index));
    form.querySelectorAll(".field").forEach((box) => box.classList.toggle("active", Number(box.dataset.index) === active));
    const box = boxOf(active);
    box.scrollIntoView({block: "nearest"});
    const field = fields[active];
    const input = box.querySelector("input");
    if (focusInput && input) input.focus();
    else if (document.activeElement && document.activeElement !== document.body && !box.contains(document.activeElement)) document.activeElement.blur();
  }

  function choose(index, value) {
    const field = fields[index];
    values[field.key] = value;
    const box = boxOf(index);
    box.querySelectorAll(".option").forEach((b) => b.classList.toggle("selected", b.dataset.value === JSON.stringify(value)));
    markAnswered(box, true);
    box.querySelector(".field-error").textContent = "";
    if (field.reason) { setActive(index, false); box.querySelector(".reason").focus(); }
    else if (index < fields.length - 1) setActive(index + 1);
  }

  function step(direction) {
    const field = fields[active];
    if (field.kind === "continuous") {
      const input = boxOf(active).querySelector("input");
      const stepSize = field.step || 0.1;
      const start = input.value === "" ? (field.min + field.max) / 2 : Number(input.value);
      const next = Math.min(field.max, Math.max(field.min, start + direction * stepSize));
      input.value = next.toFixed(Math.max(0, (String(stepSize).split(".")[1] || "").length));
      input.dispatchEvent(new Event("input"));
      return;
    }
    const options = field.kind === "integer" ? scoreList(field) : field.kind === "text" ? [] : choiceList(field);
    if (!options.length) return;
    const at = options.findIndex((o) => JSON.stringify(o.value) === JSON.stringify(values[field.key]));
    const next = at < 0 ? (direction > 0 ? 0 : options.length - 1) : Math.max(0, Math.min(options.length - 1, at + direction));
    const value = options[next].value;
    values[field.key] = value;
    boxOf(active).querySelectorAll(".option").forEach((b) => b.classList.toggle("selected", b.dataset.value === JSON.stringify(value)));
    markAnswered(boxOf(active), true);
  }

  function resetForm() {
    values = {};
    reasons = {};
    form.querySelectorAll(".field").forEach((box) => {
      box.classList.remove("answered", "invalid");
      box.querySelectorAll(".option").forEach((b) => b.classList.remove("selected"));
      box.querySelectorAll("input, textarea").forEach((input) => { input.value = ""; });
      box.querySelector(".field-error").textContent = "";
      box.querySelector(".help").hidden = true;
    });
    setActive(0, false);
  }

  // Typed fields are read from their inputs; a number the browser cannot read goes to the server as
  // typed, so that the server's message names the problem.
  function fieldValue(field, index) {
    if (field.kind !== "continuous" && field.kind !== "text") return values[field.key];
    const raw = boxOf(index).querySelector("input").value.trim();
    if (raw === "") return undefined;
    if (field.kind === "text") return raw;
    const number = Number(raw.replace(",", "."));
    return Number.isFinite(number) ? number : raw;
  }

  function labelsPayload() {
    const labels = {};
    fields.forEach((field, index) => {
      const value = fieldValue(field, index);
      if (value === undefined) return;
      labels[field.key] = field.reason ? {value, reason: (reasons[field.key] || "").trim()} : value;
    });
    return labels;
  }

  function missingField() {
    return fields.findIndex((field, index) => {
      const empty = fieldValue(field, index) === undefined;
      const reasonMissing = field.reason && field.reason.required && !empty && !(reasons[field.key] || "").trim();
      return (field.required && empty) || reasonMissing;
    });
  }

  function showFieldErrors(errors) {
    let first = -1;
    Object.entries(errors).forEach(([key, message]) => {
      const index = fields.findIndex((f) => f.key === key);
      if (index < 0) return;
      const box = boxOf(index);
      box.classList.add("invalid");
      box.querySelector(".field-error").textContent = message;
      if (first < 0 || index < first) first = index;
    });
    if (first >= 0) setActive(first);
  }

  // ---------------------------------------------------------------- photo
  function show(assignment) {
    zoomed = false;
    stage.classList.remove("zoomed");
    photo.style.transform = "";
    photo.onload = () => { state.shownAt = performance.now(); updateZoomLabel(); };  // time on task counts from here
    photo.src = assignment.image.url;
    $("phase").textContent = assignment.phase === "qualification" ? "Qualification" : "";
    $("phase").hidden = assignment.phase !== "qualification";
    $("counter").textContent = state.done ? `${state.done} labeled this session` : "";
    const prediction = $("prediction");
    if (assignment.prediction) {
      prediction.hidden = false;
      prediction.textContent = "Model's guess (do not let it anchor you): " + Object.entries(assignment.prediction.values)
        .map(([key, p]) => `${key} ${typeof p.value === "number" ? p.value.toFixed(2) : p.value}`).join(", ");
    } else prediction.hidden = true;
    resetForm();
  }

  function updateZoomLabel() {
    const scale = zoomed ? 1 : Math.min(stage.clientWidth / photo.naturalWidth, stage.clientHeight / photo.naturalHeight, 1);
    $("zoom-level").textContent = photo.naturalWidth ? Math.round(scale * 100) + "%" : "";
  }

  function toggleZoom(clientX, clientY) {
    zoomed = !zoomed;
    stage.classList.toggle("zoomed", zoomed);
    if (zoomed) {
      const rect = stage.getBoundingClientRect();
      const fx = clientX === undefined ? 0.5 : (clientX - rect.left) / rect.width;
      const fy = clientY === undefined ? 0.5 : (clientY - rect.top) / rect.height;
      stage.scrollLeft = fx * photo.naturalWidth - rect.width / 2;
      stage.scrollTop = fy * photo.naturalHeight - rect.height / 2;
    }
    updateZoomLabel();
  }

  let drag = null;
  stage.addEventListener("dblclick", (e) => toggleZoom(e.clientX, e.clientY));
  stage.addEventListener("mousedown", (e) => { if (zoomed) { drag = {x: e.clientX, y: e.clientY, left: stage.scrollLeft, top: stage.scrollTop}; e.preventDefault(); } });
  window.addEventListener("mousemove", (e) => { if (drag) { stage.scrollLeft = drag.left - (e.clientX - drag.x); stage.scrollTop = drag.top - (e.clientY - drag.y); } });
  window.addEventListener("mouseup", () => { drag = null; });
  window.addEventListener("resize", updateZoomLabel);

  // ---------------------------------------------------------------- flow
  function submit() {
    if (!state.current || state.busy) return;
    const missing = missingField();
    if (missing >= 0) {
      const field = fields[missing];
      const needsReason = fieldValue(field, missing) !== undefined && field.reason && field.reason.required;
      showFieldErrors({[field.key]: needsReason ? "a reason is required" : "this field is required"});
      if (needsReason) boxOf(missing).querySelector(".reason").focus();
      return;
    }
    task.submit({
      labels: labelsPayload(),
      client: {viewport: `${window.innerWidth}x${window.innerHeight}`, dpr: window.devicePixelRatio, zoomed_to_100: zoomed},
    });
  }

  function showFeedback(feedback, onClose) {
    const passed = Object.values(feedback.correct).filter(Boolean).length;
    $("feedback-title").textContent = `Qualification: ${passed} of ${Object.keys(feedback.correct).length} right`;
    const list = $("feedback-list");
    list.textContent = "";
    Object.entries(feedback.correct).forEach(([key, ok]) => {
      const field = fields.find((f) => f.key === key);
      const li = document.createElement("li");
      li.className = ok ? "ok" : "wrong";
      const expected = feedback.expected[key];
      const choice = field && field.choices ? field.choices.find((c) => c.value === expected) : null;
      li.textContent = `${ok ? "✓" : "✗"} ${field ? field.label : key}: expected ${choice ? choice.label : expected}`;
      list.appendChild(li);
    });
    $("feedback-message").textContent = feedback.message || "";
    $("feedback").hidden = false;
    closeFeedback = () => { $("feedback").hidden = true; closeFeedback = null; onClose(); };
  }
  let closeFeedback = null;

  // ---------------------------------------------------------------- keyboard
  function inTextBox(target) {
    return target && (target.tagName === "TEXTAREA" || (target.tagName === "INPUT" && target.type === "text"));
  }

  document.addEventListener("keydown", (event) => {
    if (!$("keys").hidden) { if (event.key === "Escape" || event.key === "?") { $("keys").hidden = true; event.preventDefault(); } return; }
    if (!$("feedback").hidden) { if ((event.key === "Enter" || event.key === " ") && closeFeedback) { event.preventDefault(); closeFeedback(); } return; }
    if (task.skipDialogKey(event)) return;
    if (!state.current) return;
    if (state.busy) { event.preventDefault(); return; }  // keys typed while a submit is in flight would land on the old photo
    const target = event.target;
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); submit(); return; }
    if (event.key === "Tab") { event.preventDefault(); setActive(active + (event.shiftKey ? -1 : 1)); return; }
    if (inTextBox(target)) {
      const field = fields[active];
      if (event.key === "Escape") { target.blur(); event.preventDefault(); }
      else if (event.key === "Enter" && target.tagName === "INPUT") { event.preventDefault(); submit(); }
      else if ((event.key === "ArrowUp" || event.key === "ArrowDown") && target.tagName === "INPUT" && field.kind === "continuous") {
        event.preventDefault(); step(event.key === "ArrowUp" ? 1 : -1);
      }
      return;
    }
    const field = fields[active];
    if (/^[0-9]$/.test(event.key) && !event.ctrlKey && !event.altKey && !event.metaKey) {
      event.preventDefault();
      if (field.kind === "integer") {
        const match = scoreList(field).find((o) => o.key === event.key);
        if (match) choose(active, match.value);
      } else if (field.kind === "ordinal" || field.kind === "nominal") {
        const match = choiceList(field).find((o) => o.key === event.key);
        if (match) choose(active, match.value);
      } else {
        const input = boxOf(active).querySelector("input");
        input.focus();
        input.value += event.key;
        input.dispatchEvent(new Event("input"));
      }
      return;
    }
    switch (event.key) {
      case "ArrowDown": event.preventDefault(); setActive(active + 1); break;
      case "ArrowUp": event.preventDefault(); setActive(active - 1); break;
      case "ArrowRight": event.preventDefault(); step(1); break;
      case "ArrowLeft": event.preventDefault(); step(-1); break;
      case "Enter": event.preventDefault(); submit(); break;
      case "x": case "X": event.preventDefault(); task.openSkip(); break;
      case "z": case "Z": event.preventDefault(); toggleZoom(); break;
      case "f": case "F": event.preventDefault(); if (document.fullscreenElement) document.exitFullscreen(); else stage.requestFullscreen().catch(() => {}); break;
      case "h": case "H": { event.preventDefault(); const help = boxOf(active).querySelector(".help"); help.hidden = !help.hidden; break; }
      case "?": event.preventDefault(); $("keys").hidden = false; break;
      default: break;
    }
  });

  $("submit").addEventListener("click", submit);
  $("skip").addEventListener("click", task.openSkip);
  $("help-toggle").addEventListener("click", () => { $("keys").hidden = false; });

  buildForm();
  task.start();
})();
