// The JSON form's behaviour: add, remove and reorder list rows, and mark edited fields.
// Without JavaScript the form still saves edits and removes rows (the "remove" boxes);
// adding and reordering rows need this file. No inline handlers: the CSP forbids them.
(function () {
  "use strict";

  var TEMPLATE_PTR = "@@P@@";
  var NEW_KEY = "__NEW__";
  var counter = 0;

  // Field names are "v|kind|base|text|<pointer>": the pointer is everything after the 4th bar.
  function splitName(name) {
    var at = -1;
    for (var i = 0; i < 4; i++) {
      at = name.indexOf("|", at + 1);
      if (at < 0) return null;
    }
    return [name.slice(0, at + 1), name.slice(at + 1)];
  }

  function substitute(text, ptr, key) {
    return text.split(TEMPLATE_PTR + "/" + NEW_KEY).join(ptr + "/" + key)
      .split(TEMPLATE_PTR).join(ptr)
      .split(NEW_KEY).join(key);
  }

  function rewrite(root, ptr, key, suffix) {
    var els = root.querySelectorAll("*");
    for (var i = 0; i < els.length; i++) {
      var el = els[i];
      ["name", "data-ptr", "value", "data-key"].forEach(function (attr) {
        var v = el.getAttribute(attr);
        if (v === null || (v.indexOf(TEMPLATE_PTR) < 0 && v.indexOf(NEW_KEY) < 0)) return;
        if (attr === "value" && !(el.type === "hidden" || el.type === "checkbox")) return;
        el.setAttribute(attr, substitute(v, ptr, key));
      });
      if (el.id && el.id.indexOf("jft-") === 0) el.id = "jf-" + suffix + "-" + el.id.slice(4);
      var f = el.getAttribute("for");
      if (f && f.indexOf("jft-") === 0) el.setAttribute("for", "jf-" + suffix + "-" + f.slice(4));
    }
  }

  function listOf(el) {
    return el.closest(".jf-arr");
  }

  function renumber(list) {
    if (!list) return;
    var rows = list.querySelector(".jf-rows");
    if (!rows) return;
    var n = 0;
    Array.prototype.forEach.call(rows.children, function (row) {
      var removed = row.classList.contains("jf-row-removed");
      if (!removed) n += 1;
      // The label of a row whose item is a plain value is the row number.
      var leaf = row.querySelector(":scope > .jf-leaf > .jf-label");
      if (leaf && !leaf.querySelector(".jf-tag")) leaf.textContent = removed ? "removed" : String(n);
    });
    var count = list.querySelector(":scope > legend > .jf-count");
    if (count) count.textContent = n + (n === 1 ? " item" : " items");
    var empty = list.querySelector(":scope > .jf-empty");
    if (empty) empty.hidden = n > 0;
  }

  function addRow(button) {
    var list = listOf(button);
    var tpl = list && document.getElementById(list.getAttribute("data-tpl"));
    if (!tpl) return;
    counter += 1;
    var key = "n" + counter;
    var fragment = tpl.content.cloneNode(true);
    rewrite(fragment, list.getAttribute("data-ptr"), key, "n" + counter);
    var row = fragment.firstElementChild;
    list.querySelector(":scope > .jf-rows").appendChild(fragment);
    renumber(list);
    markDirty(row);
    var first = row.querySelector("input:not([type=hidden]):not([type=checkbox]), textarea, select");
    if (first) first.focus();
  }

  function move(button, direction) {
    var row = button.closest(".jf-row");
    if (!row) return;
    var other = direction < 0 ? row.previousElementSibling : row.nextElementSibling;
    if (!other) return;
    if (direction < 0) row.parentNode.insertBefore(row, other);
    else row.parentNode.insertBefore(other, row);
    renumber(listOf(row));
    markDirty(row);
    button.focus();
  }

  function isDirty(el) {
    if (el.type === "checkbox" || el.type === "radio") return el.checked !== el.defaultChecked;
    if (el.tagName === "SELECT") {
      for (var i = 0; i < el.options.length; i++) {
        if (el.options[i].selected !== el.options[i].defaultSelected) return true;
      }
      return false;
    }
    return el.value !== el.defaultValue;
  }

  function markDirty(el) {
    var form = el.closest && el.closest("form[data-jf-form]");
    if (!form) return;
    var leaf = el.closest(".jf-leaf");
    if (leaf) {
      var input = leaf.querySelector("input, textarea, select");
      leaf.classList.toggle("jf-dirty", !!input && isDirty(input));
    }
    form.setAttribute("data-jf-changed", "1");
    var n = form.querySelectorAll(".jf-leaf.jf-dirty, .jf-row-new, .jf-row-removed").length;
    var status = form.querySelector(".jf-unsaved");
    if (status) status.textContent = n ? n + " unsaved change" + (n === 1 ? "" : "s") : "";
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-jf]");
    if (!button || !button.closest("form[data-jf-form]")) return;
    var action = button.getAttribute("data-jf");
    if (action === "add") addRow(button);
    else if (action === "up") move(button, -1);
    else if (action === "down") move(button, 1);
  });

  document.addEventListener("input", function (event) {
    markDirty(event.target);
  });

  document.addEventListener("change", function (event) {
    var el = event.target;
    if (el.matches && el.matches(".jf-remove input[type=checkbox]")) {
      var row = el.closest(".jf-row");
      row.classList.toggle("jf-row-removed", el.checked);
      renumber(listOf(row));
    }
    markDirty(el);
  });

  // Leaving with unsaved edits loses them: ask first.
  window.addEventListener("beforeunload", function (event) {
    var form = document.querySelector("form[data-jf-form][data-jf-changed]");
    if (form && !form.hasAttribute("data-jf-submitting")) {
      event.preventDefault();
      event.returnValue = "";
    }
  });
  document.addEventListener("submit", function (event) {
    if (event.target.matches && event.target.matches("form[data-jf-form]")) {
      event.target.setAttribute("data-jf-submitting", "1");
    }
  });

  // A note saved from the header closes its disclosure; htmx has swapped in a fresh one.
  document.addEventListener("htmx:afterSwap", function (event) {
    var el = event.detail && event.detail.elt;
    if (el && el.id === "feedback-note-form" && el.querySelector(".fb-saved")) el.open = false;
  });
})();
