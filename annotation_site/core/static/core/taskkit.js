// What the rater task pages share.
//
// An answer the rater gave is kept in localStorage, with its idempotency key, from the moment it is given
// until the server acknowledges it: a database restart or a dropped connection only delays it, a reload
// sends it again, and because it always goes with the same key the server stores it at most once.
// A refusal with a reason (a 4xx other than 401) is final: the page shows it and the answer is dropped.
"use strict";

window.TaskKit = (function () {
  const FIRST_RETRY_MS = 500;
  const LONGEST_RETRY_MS = 10000;
  const OFFLINE = "Saving… (offline, retrying)";
  const SIGNED_OUT = "Saving… (signed out: sign in again in another tab; the answer is kept)";

  function csrfToken() {
    const match = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  // One request. A failure to reach the server, or a success whose body was lost on the way, is status 0.
  async function post(url, body) {
    try {
      const response = await fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: {"Content-Type": "application/json", "X-CSRFToken": csrfToken()},
        body: JSON.stringify(body || {}),
      });
      const data = response.status === 204 ? null : await response.json().catch(() => null);
      if (response.ok && response.status !== 204 && data === null) throw new Error("the answer was cut off");
      return {status: response.status, data, reason: response.headers.get("X-RealQA-Reason")};
    } catch (error) {
      return {status: 0, data: {detail: "The server cannot be reached: " + error.message}, reason: null};
    }
  }

  // Worth asking again: nothing reached a decision (no connection, the server or its database away,
  // throttled), or the session ran out and the rater can sign in again in another tab.
  function transient(status) {
    return status === 0 || status === 401 || status === 408 || status === 429 || status >= 500;
  }

  function refusalText(response) {
    const data = response.data;
    if (data && typeof data.detail === "string") return data.detail;
    if (data && typeof data === "object") {
      return Object.entries(data).map(([key, value]) => `${key}: ${typeof value === "string" ? value : JSON.stringify(value)}`).join(" · ");
    }
    return "refused (" + response.status + ")";
  }

  function pause(ms) {
    // Coming back online cuts the wait short.
    return new Promise((resolve) => {
      const done = () => { clearTimeout(timer); window.removeEventListener("online", done); resolve(); };
      const timer = setTimeout(done, ms);
      window.addEventListener("online", done);
    });
  }

  function newKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return String(Date.now()) + "-" + Math.random().toString(16).slice(2);
  }

  // `name` tells the rater and the page apart (several raters may share a browser); `status` is the element
  // that says an answer is still on its way.
  function sender(name, status) {
    const prefix = "realqa.unsent." + name + ".";

    function setStatus(text) {
      status.textContent = text;
      status.hidden = !text;
    }

    function keep(entry) {
      try {
        localStorage.setItem(prefix + entry.body.idempotency_key, JSON.stringify(entry));
      } catch (error) {
        // No storage (private window, quota): the answer is still retried for as long as the page is open.
      }
    }

    function forget(entry) {
      try { localStorage.removeItem(prefix + entry.body.idempotency_key); } catch (error) { /* see keep */ }
    }

    function unsent() {
      const entries = [];
      try {
        for (let i = 0; i < localStorage.length; i++) {
          const key = localStorage.key(i);
          if (key && key.startsWith(prefix)) entries.push(JSON.parse(localStorage.getItem(key)));
        }
      } catch (error) { /* see keep */ }
      return entries.sort((a, b) => a.savedAt - b.savedAt);
    }

    // Resolves with the server's decision: an acknowledgement or a refusal, never a failure to get through.
    async function deliver(entry) {
      for (let delay = FIRST_RETRY_MS; ; delay = Math.min(delay * 2, LONGEST_RETRY_MS)) {
        const response = await post(entry.url, entry.body);
        if (!transient(response.status)) {
          forget(entry);
          setStatus("");
          return response;
        }
        setStatus(response.status === 401 ? SIGNED_OUT : OFFLINE);
        await pause(delay);
      }
    }

    // `body` carries its idempotency key; send the same answer again only with the same key.
    function send(url, body) {
      const entry = {url, body, savedAt: Date.now()};
      keep(entry);
      return deliver(entry);
    }

    // Sends what an earlier visit of the page left unsent; resolves with the refusals.
    async function resendUnsent() {
      const refused = [];
      const entries = unsent();
      if (entries.length) setStatus("Saving your last answer…");
      for (const entry of entries) {
        const response = await deliver(entry);
        if (response.status !== 200 && response.status !== 201) refused.push(response);
      }
      setStatus("");
      return refused;
    }

    return {send, resendUnsent};
  }

  return {post, sender, newKey, refusalText};
})();
