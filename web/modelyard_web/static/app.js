/* Modelyard pages: live job updates (EventSource), copy buttons, the JSON editor.
   Everything works without this file; it only makes pages live and convenient. */
(function () {
  "use strict";

  var TERMINAL = { succeeded: true, failed: true, cancelled: true };

  function copyText(text, button) {
    function done(ok) {
      if (!button) return;
      var label = button.getAttribute("data-label") || button.textContent;
      button.setAttribute("data-label", label);
      button.textContent = ok ? "Copied" : "Copy failed";
      setTimeout(function () { button.textContent = label; }, 1500);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { done(true); }, function () { done(false); });
      return;
    }
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(area);
    done(ok);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-copy]") : null;
    if (button) {
      var target = document.getElementById(button.getAttribute("data-copy"));
      if (target) copyText(target.textContent, button);
      return;
    }
    var format = event.target.closest ? event.target.closest("[data-json-format]") : null;
    if (format) {
      var area = document.getElementById(format.getAttribute("data-json-format"));
      try {
        area.value = JSON.stringify(JSON.parse(area.value), null, 2);
        checkJson(area);
      } catch (e) { checkJson(area); }
    }
  });

  /* JSON editor: say at once whether the text parses (the server checks again on submit). */
  function checkJson(area) {
    var status = document.querySelector('[data-json-status-for="' + area.id + '"]');
    if (!status) return;
    if (!area.value.trim()) { status.textContent = ""; status.className = "json-status"; return; }
    try {
      JSON.parse(area.value);
      status.textContent = "Valid JSON";
      status.className = "json-status ok";
    } catch (e) {
      status.textContent = "Not valid JSON yet: " + e.message;
      status.className = "json-status bad";
    }
  }
  document.querySelectorAll("[data-json-editor]").forEach(function (area) {
    area.addEventListener("input", function () { checkJson(area); });
    checkJson(area);
  });

  /* Live job page. */
  var job = document.getElementById("job");
  if (!job || job.getAttribute("data-terminal") === "true" || !window.EventSource) return;
  var jobId = job.getAttribute("data-job-id");
  var live = document.getElementById("live");
  var announce = document.getElementById("live-announce");
  var refreshTimer = null;
  var refreshing = false;
  var again = false;

  function setStatus(status) {
    var badge = document.querySelector("#job-status [data-status-badge]");
    if (badge) {
      badge.textContent = status;
      badge.className = "badge status status-" + status;
    }
    if (TERMINAL[status]) {
      job.setAttribute("data-terminal", "true");
      var cancel = document.getElementById("cancel-form");
      if (cancel) cancel.remove();
      live.setAttribute("aria-busy", "false");
    }
  }

  function setStep(node, state) {
    var box = live.querySelector('[data-step="' + CSS.escape(node) + '"]');
    if (!box) return;
    box.className = "step step-" + state;
    var label = box.querySelector("[data-step-state]");
    if (label) label.textContent = state;
    if (announce) announce.textContent = "Step " + node + " " + (state === "done" ? "finished" : state);
  }

  function refresh() {
    if (refreshing) { again = true; return; }
    refreshing = true;
    fetch("/jobs/" + encodeURIComponent(jobId) + "/live", {
      credentials: "same-origin", headers: { "Accept": "text/html" }
    }).then(function (response) {
      if (!response.ok) throw new Error("HTTP " + response.status);
      var status = response.headers.get("X-Job-Status");
      return response.text().then(function (html) {
        live.innerHTML = html;
        if (status) setStatus(status);
      });
    }).catch(function () { /* the next event or the final status retries */ })
      .then(function () {
        refreshing = false;
        if (again) { again = false; refresh(); }
      });
  }

  function soon() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(refresh, 150);
  }

  var source = new EventSource("/jobs/" + encodeURIComponent(jobId) + "/events");
  function data(event) {
    try { return JSON.parse(event.data); } catch (e) { return {}; }
  }
  source.addEventListener("node_started", function (event) {
    var d = data(event);
    if (d.node) setStep(d.node, "running");
  });
  source.addEventListener("node_finished", function (event) {
    var d = data(event);
    if (d.node) setStep(d.node, "done");
    soon();
  });
  source.addEventListener("status", function (event) {
    var d = data(event);
    if (!d.status) return;
    setStatus(d.status);
    if (TERMINAL[d.status]) {
      source.close();
      if (announce) announce.textContent = "Job " + d.status;
      refresh();
    } else {
      soon();
    }
  });
  source.addEventListener("error", function () {
    /* EventSource reconnects by itself with Last-Event-ID; a closed stream after the job
       ended is handled by the status event above. */
    if (job.getAttribute("data-terminal") === "true") source.close();
  });
})();
