// The region page: draw boxes on the photo with the mouse, select, move, resize or delete them, tag them
// with number keys, note them, answer the region questions, submit with Enter. Boxes live in normalised
// coordinates (0..1 of the photo), so they stay put when the window is resized.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const photo = $("photo");
  const frame = $("frame");
  const overlay = $("overlay");
  const list = $("box-list");
  const COLORS = ["#ff6b6b", "#4dabf7", "#ffd43b", "#69db7c", "#da77f2", "#ff922b", "#38d9a9", "#f783ac", "#a9e34b", "#74c0fc"];
  const MIN_PIXELS = 4;  // a smaller drag is a click, not a box

  let boxes = [];        // {box: [x0, y0, x1, y1], tag, note}
  let selected = -1;
  let currentTag = 0;    // the tag new boxes get: the last one picked
  let answers = {};
  let gesture = null;    // the drag in progress: draw, move or resize

  const task = window.GroundingTask({reset, payload, showErrors, onKey, onPhotoLoaded: fit});
  const tags = task.config.setup.tags;
  const questions = task.config.setup.region_questions;

  // ------------------------------------------------------------------ layout
  // The frame takes the photo's displayed size (fitted inside the stage), and the overlay covers it exactly.
  function fit() {
    const stage = $("stage");
    if (!photo.naturalWidth) return;
    const scale = Math.min(stage.clientWidth / photo.naturalWidth, stage.clientHeight / photo.naturalHeight);
    frame.style.width = Math.round(photo.naturalWidth * scale) + "px";
    frame.style.height = Math.round(photo.naturalHeight * scale) + "px";
  }
  window.addEventListener("resize", fit);

  function pointer(event) {
    const rect = overlay.getBoundingClientRect();
    return {
      x: Math.min(1, Math.max(0, (event.clientX - rect.left) / rect.width)),
      y: Math.min(1, Math.max(0, (event.clientY - rect.top) / rect.height)),
      rect,
    };
  }

  // ------------------------------------------------------------------ drawing
  function render() {
    overlay.querySelectorAll(".box:not(.preview)").forEach((el) => el.remove());
    boxes.forEach((entry, index) => {
      const [x0, y0, x1, y1] = entry.box;
      const el = document.createElement("div");
      el.className = "box" + (index === selected ? " selected" : "");
      el.dataset.index = index;
      el.style.left = x0 * 100 + "%";
      el.style.top = y0 * 100 + "%";
      el.style.width = (x1 - x0) * 100 + "%";
      el.style.height = (y1 - y0) * 100 + "%";
      el.style.borderColor = COLORS[tags.indexOf(entry.tag) % COLORS.length];
      const label = document.createElement("span");
      label.className = "box-label";
      label.style.background = el.style.borderColor;
      label.textContent = `${index + 1} ${entry.tag}`;
      el.appendChild(label);
      if (index === selected) {
        ["nw", "n", "ne", "e", "se", "s", "sw", "w"].forEach((corner) => {
          const handle = document.createElement("div");
          handle.className = "handle " + corner;
          handle.dataset.handle = corner;
          el.appendChild(handle);
        });
      }
      overlay.appendChild(el);
    });
    renderList();
    renderPalette();
  }

  function renderPalette() {
    const active = selected >= 0 ? tags.indexOf(boxes[selected].tag) : currentTag;
    $("tag-palette").querySelectorAll("button").forEach((button, i) => button.classList.toggle("selected", i === active));
  }

  function renderList() {
    list.textContent = "";
    $("no-boxes").hidden = boxes.length > 0;
    boxes.forEach((entry, index) => {
      const row = document.createElement("li");
      row.className = "box-row" + (index === selected ? " selected" : "");
      row.dataset.index = index;
      row.innerHTML = '<span class="swatch"></span><span class="box-name"></span><input type="text" class="note" placeholder="Note (N)"><button type="button" class="remove" title="Delete (Del)">×</button><div class="row-error"></div>';
      row.querySelector(".swatch").style.background = COLORS[tags.indexOf(entry.tag) % COLORS.length];
      row.querySelector(".box-name").textContent = `${index + 1} · ${entry.tag}`;
      const note = row.querySelector(".note");
      note.maxLength = 300;
      note.value = entry.note;
      note.addEventListener("input", () => { entry.note = note.value; });
      note.addEventListener("focus", () => { if (selected !== index) select(index, false); });
      row.querySelector(".remove").addEventListener("click", () => remove(index));
      row.addEventListener("mousedown", (e) => { if (e.target === row || e.target.classList.contains("box-name")) select(index); });
      list.appendChild(row);
    });
    renderQuestionChoices();
  }

  function select(index, rerender = true) {
    selected = index;
    if (index >= 0) currentTag = tags.indexOf(boxes[index].tag);
    if (rerender) render();
    else {
      overlay.querySelectorAll(".box:not(.preview)").forEach((el) => el.classList.toggle("selected", Number(el.dataset.index) === index));
      list.querySelectorAll(".box-row").forEach((el) => el.classList.toggle("selected", Number(el.dataset.index) === index));
      renderPalette();
    }
  }

  function remove(index) {
    boxes.splice(index, 1);
    // Region answers point at boxes by position: keep them pointing at the same boxes.
    Object.keys(answers).forEach((key) => {
      const question = questions.find((q) => q.key === key);
      if (question && question.kind === "region" && answers[key] !== null) {
        if (answers[key] === index) answers[key] = null;
        else if (answers[key] > index) answers[key] -= 1;
      }
    });
    selected = boxes.length ? Math.min(index, boxes.length - 1) : -1;
    render();
  }

  function setTag(index) {
    if (index < 0 || index >= tags.length) return;
    currentTag = index;
    if (selected >= 0) { boxes[selected].tag = tags[index]; render(); }
    else renderPalette();
  }

  overlay.addEventListener("mousedown", (event) => {
    if (event.button !== 0 || !task.state.current) return;
    event.preventDefault();
    if (document.activeElement && document.activeElement !== document.body) document.activeElement.blur();
    const at = pointer(event);
    const handle = event.target.dataset && event.target.dataset.handle;
    const boxEl = event.target.closest(".box");
    if (handle && selected >= 0) {
      gesture = {mode: "resize", handle, start: at, original: boxes[selected].box.slice()};
    } else if (boxEl) {
      select(Number(boxEl.dataset.index));
      gesture = {mode: "move", start: at, original: boxes[selected].box.slice()};
    } else {
      gesture = {mode: "draw", start: at};
    }
  });

  window.addEventListener("mousemove", (event) => {
    if (!gesture) return;
    const at = pointer(event);
    if (gesture.mode === "draw") {
      drawPreview(gesture.start, at);
    } else if (gesture.mode === "move") {
      const [x0, y0, x1, y1] = gesture.original;
      const dx = Math.min(1 - x1, Math.max(-x0, at.x - gesture.start.x));
      const dy = Math.min(1 - y1, Math.max(-y0, at.y - gesture.start.y));
      boxes[selected].box = [x0 + dx, y0 + dy, x1 + dx, y1 + dy];
      placeBox(selected);
    } else {
      let [x0, y0, x1, y1] = gesture.original;
      const h = gesture.handle;
      if (h.includes("w")) x0 = at.x;
      if (h.includes("e")) x1 = at.x;
      if (h.includes("n")) y0 = at.y;
      if (h.includes("s")) y1 = at.y;
      // Dragging a side across the other flips the box rather than turning it inside out.
      boxes[selected].box = [Math.min(x0, x1), Math.min(y0, y1), Math.max(x0, x1), Math.max(y0, y1)];
      placeBox(selected);
    }
  });

  window.addEventListener("mouseup", (event) => {
    if (!gesture) return;
    const done = gesture;
    gesture = null;
    $("preview").hidden = true;
    if (done.mode === "draw") {
      const at = pointer(event);
      const wide = Math.abs(at.x - done.start.x) * at.rect.width >= MIN_PIXELS;
      const tall = Math.abs(at.y - done.start.y) * at.rect.height >= MIN_PIXELS;
      if (wide && tall) {
        boxes.push({box: [Math.min(done.start.x, at.x), Math.min(done.start.y, at.y), Math.max(done.start.x, at.x), Math.max(done.start.y, at.y)], tag: tags[currentTag], note: ""});
        selected = boxes.length - 1;
      } else selected = -1;  // a click on the photo lets go of the selection
      render();
    } else {
      const [x0, y0, x1, y1] = boxes[selected].box;
      if ((x1 - x0) * done.start.rect.width < MIN_PIXELS || (y1 - y0) * done.start.rect.height < MIN_PIXELS) boxes[selected].box = done.original;
      render();
    }
  });

  function drawPreview(a, b) {
    const preview = $("preview");
    preview.hidden = false;
    preview.style.left = Math.min(a.x, b.x) * 100 + "%";
    preview.style.top = Math.min(a.y, b.y) * 100 + "%";
    preview.style.width = Math.abs(b.x - a.x) * 100 + "%";
    preview.style.height = Math.abs(b.y - a.y) * 100 + "%";
    preview.style.borderColor = COLORS[currentTag % COLORS.length];
  }

  function placeBox(index) {
    const el = overlay.querySelector(`.box[data-index="${index}"]`);
    const [x0, y0, x1, y1] = boxes[index].box;
    Object.assign(el.style, {left: x0 * 100 + "%", top: y0 * 100 + "%", width: (x1 - x0) * 100 + "%", height: (y1 - y0) * 100 + "%"});
  }

  function nudge(dx, dy) {
    if (selected < 0) return;
    const [x0, y0, x1, y1] = boxes[selected].box;
    dx = Math.min(1 - x1, Math.max(-x0, dx));
    dy = Math.min(1 - y1, Math.max(-y0, dy));
    boxes[selected].box = [x0 + dx, y0 + dy, x1 + dx, y1 + dy];
    placeBox(selected);
  }

  // ------------------------------------------------------------------ questions
  function buildQuestions() {
    const holder = $("questions");
    holder.textContent = "";
    holder.hidden = questions.length === 0;
    questions.forEach((question) => {
      const box = document.createElement("div");
      box.className = "question";
      box.dataset.key = question.key;
      const text = document.createElement("div");
      text.className = "question-text";
      text.textContent = question.text;
      box.appendChild(text);
      if (question.kind === "yes_no") {
        ["yes", "no"].forEach((value) => {
          const button = document.createElement("button");
          button.type = "button";
          button.className = "option";
          button.dataset.value = value;
          button.textContent = value === "yes" ? "Yes" : "No";
          button.tabIndex = -1;
          button.addEventListener("click", () => {
            answers[question.key] = answers[question.key] === value ? undefined : value;
            if (answers[question.key] === undefined) delete answers[question.key];
            renderAnswers();
          });
          box.appendChild(button);
        });
      } else {
        const choice = document.createElement("select");
        choice.className = "region-choice";
        choice.addEventListener("change", () => {
          if (choice.value === "") delete answers[question.key];
          else answers[question.key] = choice.value === "none" ? null : Number(choice.value);
        });
        box.appendChild(choice);
      }
      const error = document.createElement("div");
      error.className = "row-error";
      box.appendChild(error);
      holder.appendChild(box);
    });
  }

  function renderQuestionChoices() {
    questions.filter((q) => q.kind === "region").forEach((question) => {
      const choice = $("questions").querySelector(`.question[data-key="${question.key}"] select`);
      choice.textContent = "";
      const options = [["", "— not answered —"], ["none", "None of my boxes"], ...boxes.map((b, i) => [String(i), `Box ${i + 1} · ${b.tag}`])];
      options.forEach(([value, label]) => { const o = document.createElement("option"); o.value = value; o.textContent = label; choice.appendChild(o); });
      const answer = answers[question.key];
      choice.value = answer === undefined ? "" : answer === null ? "none" : String(answer);
    });
  }

  function renderAnswers() {
    questions.filter((q) => q.kind === "yes_no").forEach((question) => {
      $("questions").querySelectorAll(`.question[data-key="${question.key}"] .option`).forEach((b) => b.classList.toggle("selected", answers[question.key] === b.dataset.value));
    });
  }

  // ------------------------------------------------------------------ task hooks
  function reset() {
    boxes = [];
    selected = -1;
    answers = {};
    gesture = null;
    $("questions").querySelectorAll(".row-error").forEach((el) => { el.textContent = ""; });
    fit();
    render();
    renderAnswers();
  }

  function payload() {
    return {
      boxes: boxes.map((b) => ({box: b.box.map((v) => Math.round(v * 1e6) / 1e6), tag: b.tag, note: b.note.trim()})),
      answers,
    };
  }

  // Messages about a box go next to its row; the others are returned for the page's error line.
  function showErrors(errors) {
    const rest = [];
    Object.entries(errors).forEach(([place, message]) => {
      const boxMatch = place.match(/^boxes\[(\d+)\]/);
      const answerMatch = place.match(/^answers\.(.+)$/);
      const row = boxMatch ? list.querySelector(`.box-row[data-index="${boxMatch[1]}"] .row-error`) : answerMatch ? $("questions").querySelector(`.question[data-key="${answerMatch[1]}"] .row-error`) : null;
      if (row) row.textContent = message;
      else rest.push(`${place}: ${message}`);
    });
    return rest;
  }

  function onKey(event, typing) {
    if (typing) {
      if (event.key === "Escape") { event.target.blur(); event.preventDefault(); }
      else if (event.key === "Enter" && event.target.tagName === "INPUT") { event.preventDefault(); task.submit(); }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const step = event.shiftKey ? 0.05 : 0.005;
    if (/^[0-9]$/.test(event.key)) { setTag((Number(event.key) + 9) % 10); event.preventDefault(); }
    else if (event.key === "Enter") { event.preventDefault(); task.submit(); }
    else if (event.key === "Delete" || event.key === "Backspace") { if (selected >= 0) remove(selected); event.preventDefault(); }
    else if (event.key === "Tab") {
      const n = boxes.length;
      if (n) select(selected < 0 ? (event.shiftKey ? n - 1 : 0) : (selected + (event.shiftKey ? n - 1 : 1)) % n);
      event.preventDefault();
    }
    else if (event.key === "Escape") { select(-1); event.preventDefault(); }
    else if (event.key === "n" || event.key === "N") {
      if (selected >= 0) { list.querySelector(`.box-row[data-index="${selected}"] .note`).focus(); event.preventDefault(); }
    }
    else if (event.key === "ArrowLeft") { nudge(-step, 0); event.preventDefault(); }
    else if (event.key === "ArrowRight") { nudge(step, 0); event.preventDefault(); }
    else if (event.key === "ArrowUp") { nudge(0, -step); event.preventDefault(); }
    else if (event.key === "ArrowDown") { nudge(0, step); event.preventDefault(); }
  }

  // ------------------------------------------------------------------ start
  tags.forEach((tag, i) => {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "option";
    button.tabIndex = -1;
    button.innerHTML = "<kbd></kbd><span class=\"swatch\"></span><span></span>";
    button.querySelector("kbd").textContent = String((i + 1) % 10);
    button.querySelector(".swatch").style.background = COLORS[i % COLORS.length];
    button.querySelector("span:last-child").textContent = tag;
    button.addEventListener("click", () => setTag(i));
    $("tag-palette").appendChild(button);
  });
  buildQuestions();
  task.start();
})();
