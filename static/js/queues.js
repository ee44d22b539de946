// Review page: renew the claim while the page is open, switch the run's tabs in place,
// and the keyboard: j/k move between rubric fields, y/n mark one correct or needing a
// fix, Enter submits and takes the next, s skips. Without this file the page still
// works: the tabs are links, the verdicts radios, the lock long and a submit renews it.
(function () {
  "use strict";
  var form = document.getElementById("review-form");
  if (!form) return;
  var csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  var every = parseInt(form.dataset.renewEvery, 10) * 1000;
  var note = document.getElementById("lock-note");
  function renew() {
    fetch(form.dataset.renewUrl, {
      method: "POST",
      headers: { "X-CSRFToken": csrf },
      credentials: "same-origin",
    }).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok && note) note.textContent = body.error || "Your claim lapsed.";
      });
    }).catch(function () { /* offline: the next ping or the submit renews */ });
  }
  if (every > 0) setInterval(renew, every);

  // Tabs switch without a reload, so edits made in the Form are not lost.
  function showTab(name) {
    document.querySelectorAll("#run-tabs [data-tab]").forEach(function (a) {
      if (a.dataset.tab === name) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    });
    form.querySelectorAll("[data-pane]").forEach(function (p) { p.hidden = p.dataset.pane !== name; });
    var url = new URL(window.location.href);
    url.searchParams.set("tab", name);
    history.replaceState(null, "", url);
  }
  document.querySelectorAll("#run-tabs [data-tab]").forEach(function (a) {
    a.addEventListener("click", function (e) { e.preventDefault(); showTab(a.dataset.tab); });
  });

  var keys = document.getElementById("review-keys");
  if (keys) keys.hidden = false;
  var fields = Array.prototype.slice.call(form.querySelectorAll(".review-field"));
  var current = -1;
  function select(i) {
    if (!fields.length) return;
    current = Math.max(0, Math.min(fields.length - 1, i));
    fields.forEach(function (f, k) { f.classList.toggle("is-current", k === current); });
    var f = fields[current];
    var checked = f.querySelector("input[type=radio]:checked") || f.querySelector("input[type=radio]");
    if (checked) checked.focus();
    f.scrollIntoView({ block: "nearest" });
  }
  function within(ptr, ancestor) {
    return ptr === ancestor || ptr.indexOf(ancestor + "/") === 0;
  }
  // The Form's input for a rubric field: its own leaf, or the first one inside it.
  function formInput(ptr) {
    var leaves = form.querySelectorAll("#pane-form .jf-leaf[data-ptr]");
    for (var i = 0; i < leaves.length; i++) {
      if (within(leaves[i].dataset.ptr, ptr)) return leaves[i].querySelector("input, textarea, select");
    }
    return null;
  }
  function mark(verdict) {
    if (current < 0) select(0);
    var f = fields[current];
    if (!f) return;
    var radio = f.querySelector('input[type=radio][value="' + verdict + '"]');
    if (radio) radio.checked = true;
    if (verdict === "ok") { select(current + 1); return; }
    var input = formInput(f.dataset.ptr) || f.querySelector("input[type=text]");
    if (input) {
      showTab("form");
      input.focus();
      if (input.select) input.select();
    }
  }
  function press(id) { var b = document.getElementById(id); if (b) b.click(); }
  function typing(el) {
    if (!el) return false;
    if (el.isContentEditable || el.tagName === "TEXTAREA" || el.tagName === "SELECT") return true;
    return el.tagName === "INPUT" && !/^(radio|checkbox|button|submit)$/.test(el.type);
  }
  document.addEventListener("keydown", function (e) {
    if ((e.ctrlKey || e.metaKey) && e.key === "Enter") { e.preventDefault(); press("submit-next"); return; }
    if (e.altKey && (e.key === "k" || e.key === "K")) { e.preventDefault(); press("skip"); return; }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (typing(e.target)) {
      if (e.key === "Escape") { e.target.blur(); if (current >= 0) select(current); }
      return;
    }
    // A focused button or link keeps its own Enter.
    if (e.key === "Enter" && e.target && /^(BUTTON|A|SUMMARY)$/.test(e.target.tagName)) return;
    var action = { j: function () { select(current + 1); }, k: function () { select(current - 1); },
      y: function () { mark("ok"); }, n: function () { mark("corrected"); },
      s: function () { press("skip"); }, Enter: function () { press("submit-next"); } }[e.key];
    if (action) { e.preventDefault(); action(); }
  });

  // Editing a value in the Form marks the rubric fields it lies in as needing a fix.
  form.addEventListener("input", function (e) {
    var leaf = e.target.closest && e.target.closest(".jf-leaf[data-ptr]");
    var ptr = leaf ? leaf.dataset.ptr : null;
    var typed = /^x-(\d+)$/.exec(e.target.name || "");
    fields.forEach(function (f) {
      if ((ptr !== null && within(ptr, f.dataset.ptr)) || (typed && f.dataset.i === typed[1])) {
        var radio = f.querySelector('input[type=radio][value="corrected"]');
        if (radio) radio.checked = true;
      }
    });
  });
})();
