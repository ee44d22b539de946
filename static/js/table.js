// The executions table: keyboard moves, row links, bulk selection, the status
// drop-down's label. Everything here is an enhancement: without it the table is
// plain links and forms. No inline handlers (the CSP forbids them).
(function () {
  "use strict";

  var current = null; // id of the row j/k last moved to

  // The keys work now: say so (the hint stays hidden with JavaScript off).
  function showHints() {
    document.querySelectorAll("[data-kbd-hint]").forEach(function (el) { el.hidden = false; });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", showHints);
  else showHints();

  // The Version drop-down offers the chosen agent's versions ("agent:version" labels);
  // the server drew them all, hiding the others, so a change of agent just re-hides.
  document.addEventListener("change", function (event) {
    if (!event.target.matches || !event.target.matches("#id_agent")) return;
    var agent = event.target.value;
    var version = document.getElementById("id_version");
    if (!version) return;
    Array.prototype.forEach.call(version.options, function (option) {
      option.hidden = Boolean(agent && option.value && option.text.indexOf(agent + ":") !== 0);
    });
    if (version.selectedOptions[0] && version.selectedOptions[0].hidden) version.value = "";
  }, true);

  function rows() {
    return Array.prototype.slice.call(
      document.querySelectorAll("#exec-table tr.exec-row, #exec-table tr.batch-row")
    );
  }

  function setCurrent(row, scroll) {
    rows().forEach(function (r) { r.classList.remove("is-current"); });
    if (!row) { current = null; return; }
    row.classList.add("is-current");
    current = row.id;
    if (scroll) row.scrollIntoView({ block: "nearest" });
  }

  function move(step) {
    var all = rows();
    if (!all.length) return;
    var at = all.findIndex(function (r) { return r.id === current; });
    var next = at === -1 ? (step > 0 ? 0 : all.length - 1) : Math.min(all.length - 1, Math.max(0, at + step));
    setCurrent(all[next], true);
  }

  function open(row, newTab) {
    var href = row && row.getAttribute("data-href");
    if (!href) return;
    if (newTab) window.open(href, "_blank", "noopener");
    else window.location.assign(href);
  }

  function typing(el) {
    if (!el) return false;
    var tag = el.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || el.isContentEditable;
  }

  document.addEventListener("keydown", function (event) {
    if (event.metaKey || event.ctrlKey || event.altKey) return;
    if (!document.getElementById("exec-table")) return;
    var active = document.activeElement;
    if (event.key === "Escape" && active && active.id === "id_q") { active.blur(); return; }
    if (typing(active)) return;
    if (event.key === "/") {
      var search = document.getElementById("id_q");
      if (search) { event.preventDefault(); search.focus(); search.select(); }
    } else if (event.key === "j") {
      event.preventDefault(); move(1);
    } else if (event.key === "k") {
      event.preventDefault(); move(-1);
    } else if (event.key === "Enter" && current) {
      var row = document.getElementById(current);
      if (row && !(active && active.closest && active.closest("a, button, summary"))) {
        event.preventDefault(); open(row, event.shiftKey);
      }
    } else if (event.key === "x" && current) {
      var box = document.querySelector("#" + CSS.escape(current) + " input.row-check");
      if (box) { box.checked = !box.checked; syncBulk(); }
    }
  });

  // A click anywhere on a row opens it, except on the controls inside it.
  document.addEventListener("click", function (event) {
    var row = event.target.closest && event.target.closest("#exec-table tr[data-href]");
    if (!row) return;
    if (event.target.closest("a, button, input, label, summary, select, textarea")) return;
    if (window.getSelection && String(window.getSelection())) return; // selecting text
    open(row, event.metaKey || event.ctrlKey || event.button === 1);
  });

  // The search box already asked (on input, debounced): leaving it must not ask again
  // and race a sort or page link clicked at the same moment.
  document.addEventListener("change", function (event) {
    if (event.target.id === "id_q") event.stopPropagation();
  }, true);

  // Bulk selection: the checkboxes belong to #bulk-form; this keeps the bar's count.
  var selected = new Set();

  function syncBulk() {
    selected = new Set();
    document.querySelectorAll("#exec-table input.row-check").forEach(function (box) {
      if (box.checked) selected.add(box.value);
      var row = box.closest("tr");
      if (row) row.classList.toggle("is-selected", box.checked);
    });
    var bar = document.querySelector("[data-bulk-bar]");
    if (bar) {
      bar.hidden = selected.size === 0;
      var count = bar.querySelector("[data-bulk-count]");
      if (count) count.textContent = selected.size + " selected";
      var clear = bar.querySelector("[data-bulk-clear]");
      if (clear) clear.hidden = selected.size === 0;
    }
    var all = document.querySelector("[data-check-all]");
    if (all) {
      var boxes = document.querySelectorAll("#exec-table input.row-check");
      all.checked = boxes.length > 0 && selected.size === boxes.length;
      all.indeterminate = selected.size > 0 && selected.size < boxes.length;
    }
  }

  document.addEventListener("change", function (event) {
    var el = event.target;
    if (el.matches("[data-check-all]")) {
      document.querySelectorAll("#exec-table input.row-check").forEach(function (box) {
        box.checked = el.checked;
      });
      syncBulk();
    } else if (el.matches("input.row-check")) {
      syncBulk();
    } else if (el.closest("[data-multi]")) {
      multiLabel(el.closest("[data-multi]"));
    }
  });

  document.addEventListener("click", function (event) {
    var clear = event.target.closest && event.target.closest("[data-bulk-clear]");
    if (!clear) return;
    document.querySelectorAll("#exec-table input.row-check").forEach(function (box) { box.checked = false; });
    syncBulk();
  });

  // The status drop-down's summary names what is ticked.
  function multiLabel(details) {
    var names = [];
    details.querySelectorAll("input[type=checkbox]:checked").forEach(function (box) {
      names.push(box.parentNode.textContent.trim());
    });
    var label = details.querySelector("[data-multi-label]");
    if (label) label.textContent = names.join(", ");
  }

  // Close an open drop-down when clicking elsewhere.
  document.addEventListener("click", function (event) {
    document.querySelectorAll("details.multi[open], details.menu[open]").forEach(function (d) {
      if (!d.contains(event.target)) d.removeAttribute("open");
    });
  });

  // After a live update replaces running rows, keep their ticks and the j/k cursor.
  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    var target = event.detail.target;
    if (!target || !target.id) return;
    var box = target.querySelector && target.querySelector("input.row-check");
    if (box && box.checked) selected.add(box.value);
  });
  document.addEventListener("htmx:oobAfterSwap", function (event) {
    var target = event.detail.target;
    var el = target && target.id ? document.getElementById(target.id) : null;
    if (!el) return;
    var box = el.querySelector("input.row-check");
    if (box && selected.has(box.value)) box.checked = true;
    if (el.id === current) el.classList.add("is-current");
    syncBulk();
  });

  // New results: the previous page's cursor and ticks no longer apply.
  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail.target;
    if (target && target.id === "results") {
      current = null;
      syncBulk();
    } else if (target && target.classList && target.classList.contains("batch-group")) {
      syncBulk();
    }
  });

  function init() {
    syncBulk();
    document.querySelectorAll("[data-multi]").forEach(multiLabel);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
