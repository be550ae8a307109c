/* Small progressive enhancements; every page works without them. */
(function () {
  "use strict";

  function onReady(callback) {
    if (document.readyState !== "loading") callback();
    else document.addEventListener("DOMContentLoaded", callback);
  }

  // A destructive form asks first, in a <dialog> (confirm() where <dialog> is missing).
  function confirmAction(text) {
    var dialog = document.getElementById("confirm-dialog");
    if (!dialog || typeof dialog.showModal !== "function") return Promise.resolve(window.confirm(text));
    document.getElementById("confirm-text").textContent = text;
    return new Promise(function (resolve) {
      dialog.addEventListener("close", function handler() {
        dialog.removeEventListener("close", handler);
        resolve(dialog.returnValue === "confirm");
      });
      dialog.returnValue = "";
      dialog.showModal();
      document.getElementById("confirm-ok").focus();
    });
  }

  onReady(function () {
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (form.dataset.confirmed === "yes") return;
        event.preventDefault();
        confirmAction(form.dataset.confirm).then(function (ok) {
          if (!ok) return;
          form.dataset.confirmed = "yes";
          form.submit();
        });
      });
    });

    document.querySelectorAll("[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", function () { select.form.submit(); });
    });

    var toggle = document.querySelector("[data-nav-toggle]");
    if (toggle) {
      toggle.addEventListener("click", function () {
        var open = document.body.classList.toggle("nav-open");
        toggle.setAttribute("aria-expanded", open ? "true" : "false");
      });
    }

    document.querySelectorAll("[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        var input = document.querySelector(button.dataset.copy);
        input.select();
        if (navigator.clipboard) navigator.clipboard.writeText(input.value);
        // A translated "Copied" from the template, for a moment.
        if (button.dataset.copied) {
          var label = button.dataset.label || button.textContent;
          button.dataset.label = label;
          button.textContent = button.dataset.copied;
          window.setTimeout(function () { button.textContent = label; }, 1500);
        }
      });
    });

    setUpDropzone();
    pollDocuments();
  });

  function setUpDropzone() {
    var zone = document.querySelector("[data-dropzone]");
    if (!zone) return;
    var input = zone.querySelector("input[type=file]");
    var list = zone.querySelector("[data-file-list]");
    function show() {
      list.textContent = "";
      Array.prototype.forEach.call(input.files, function (file) {
        var item = document.createElement("li");
        item.textContent = file.name + " (" + Math.max(1, Math.round(file.size / 1024)) + " KB)";
        list.appendChild(item);
      });
    }
    input.addEventListener("change", show);
    ["dragenter", "dragover"].forEach(function (name) {
      zone.addEventListener(name, function (event) { event.preventDefault(); zone.classList.add("dragging"); });
    });
    ["dragleave", "drop"].forEach(function (name) {
      zone.addEventListener(name, function () { zone.classList.remove("dragging"); });
    });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      if (!event.dataTransfer || !event.dataTransfer.files.length) return;
      input.files = event.dataTransfer.files;
      show();
    });
    var form = zone.closest("form");
    form.addEventListener("submit", function () {
      var button = form.querySelector("[data-upload-submit]");
      if (button) button.disabled = true;
    });
  }

  // While a document is pending or processing, its row refreshes itself.
  function pollDocuments() {
    var table = document.querySelector("table[data-documents]");
    if (!table || table.dataset.polling !== "on") return;
    var ids = Array.prototype.map.call(table.querySelectorAll("tr[data-document-id]"), function (row) {
      return row.dataset.documentId;
    });
    var delay = 1500;
    function tick() {
      fetch(table.dataset.statusUrl + "?ids=" + ids.join(","), { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : Promise.reject(response.status); })
        .then(function (data) {
          data.documents.forEach(update);
          if (data.in_progress) window.setTimeout(tick, delay);
        })
        .catch(function () { window.setTimeout(tick, delay * 4); });
    }
    function update(state) {
      var row = table.querySelector('tr[data-document-id="' + state.id + '"]');
      if (!row) return;
      var busy = state.status === "pending" || state.status === "processing";
      var status = row.querySelector('[data-field="status"]');
      status.textContent = state.status_label;
      status.className = "status status-" + state.status;
      row.querySelector('[data-field="stage"]').textContent = busy ? state.stage_label : "";
      var progress = row.querySelector('[data-field="progress"]');
      progress.value = state.progress;
      progress.hidden = !busy;
      var error = row.querySelector('[data-field="error"]');
      error.textContent = state.error;
      error.hidden = !state.error;
      row.querySelector('[data-field="chunk_count"]').textContent = state.chunk_count;
    }
    window.setTimeout(tick, delay);
  }
})();
