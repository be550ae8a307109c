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

  // The upload: files chosen or dropped, folders included (walked with webkitGetAsEntry), sent
  // in batches to the page's own URL, which answers each file's outcome as JSON. Without
  // script the form posts as usual and the outcomes come back as messages.
  function setUpDropzone() {
    var zone = document.querySelector("[data-dropzone]");
    if (!zone) return;
    var form = zone.closest("form");
    var input = zone.querySelector("input[type=file]");
    var list = zone.querySelector("[data-file-list]");
    var progress = form.querySelector("[data-upload-progress]");
    var results = form.querySelector("[data-upload-results]");
    var reload = form.querySelector("[data-upload-reload]");
    var button = form.querySelector("[data-upload-submit]");
    var chosen = []; // {file, path}

    function format(text, values) {
      return text.replace(/\{(\w+)\}/g, function (_, key) { return String(values[key]); });
    }
    function choose(entries) {
      chosen = entries;
      list.textContent = "";
      chosen.slice(0, 50).forEach(function (entry) {
        var item = document.createElement("li");
        item.textContent = entry.path + " (" + Math.max(1, Math.round(entry.file.size / 1024)) + " KB)";
        list.appendChild(item);
      });
      if (chosen.length > 50) {
        var more = document.createElement("li");
        more.textContent = "… +" + (chosen.length - 50);
        list.appendChild(more);
      }
    }
    input.addEventListener("change", function () {
      choose(Array.prototype.map.call(input.files, function (file) {
        return { file: file, path: file.webkitRelativePath || file.name };
      }));
    });

    // A dropped folder: every file under it, with its path.
    function walk(entry, path, found) {
      if (entry.isFile) {
        return new Promise(function (resolve) {
          entry.file(function (file) { found.push({ file: file, path: path + file.name }); resolve(); }, function () { resolve(); });
        });
      }
      if (!entry.isDirectory) return Promise.resolve();
      var reader = entry.createReader();
      return new Promise(function (resolve) {
        var children = [];
        (function readMore() {
          // readEntries answers at most 100 entries a call: call it until it answers none.
          reader.readEntries(function (batch) {
            if (!batch.length) {
              Promise.all(children.map(function (child) { return walk(child, path + entry.name + "/", found); })).then(resolve);
              return;
            }
            children = children.concat(Array.prototype.slice.call(batch));
            readMore();
          }, function () { resolve(); });
        })();
      });
    }
    function dropped(transfer) {
      var items = transfer.items ? Array.prototype.slice.call(transfer.items) : [];
      var entries = items.map(function (item) {
        return item.kind === "file" && item.webkitGetAsEntry ? item.webkitGetAsEntry() : null;
      });
      if (!entries.length || entries.some(function (entry) { return !entry; })) {
        return Promise.resolve(Array.prototype.map.call(transfer.files, function (file) { return { file: file, path: file.name }; }));
      }
      var found = [];
      return Promise.all(entries.map(function (entry) { return walk(entry, "", found); })).then(function () { return found; });
    }

    ["dragenter", "dragover"].forEach(function (name) {
      zone.addEventListener(name, function (event) { event.preventDefault(); zone.classList.add("dragging"); });
    });
    ["dragleave", "drop"].forEach(function (name) {
      zone.addEventListener(name, function () { zone.classList.remove("dragging"); });
    });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      if (!event.dataTransfer) return;
      progress.hidden = false;
      progress.textContent = form.dataset.textReading;
      dropped(event.dataTransfer).then(function (found) {
        progress.hidden = true;
        choose(found);
      });
    });

    // Batches of at most data-batch-files files and data-batch-bytes bytes (one file alone
    // may be larger: the server says whether it fits the plan).
    function batches() {
      var all = [], current = [], bytes = 0;
      var maxBytes = parseInt(form.dataset.batchBytes, 10), maxFiles = parseInt(form.dataset.batchFiles, 10);
      chosen.forEach(function (entry) {
        if (current.length && (current.length >= maxFiles || bytes + entry.file.size > maxBytes)) {
          all.push(current);
          current = [];
          bytes = 0;
        }
        current.push(entry);
        bytes += entry.file.size;
      });
      if (current.length) all.push(current);
      return all;
    }
    function show(result) {
      var item = document.createElement("li");
      item.className = "outcome-" + result.outcome;
      item.textContent = result.filename + ": " + result.text;
      results.appendChild(item);
    }
    form.addEventListener("submit", function (event) {
      if (!chosen.length || !window.fetch || !window.FormData) {
        button.disabled = true;
        return; // the browser posts the form
      }
      event.preventDefault();
      button.disabled = true;
      results.textContent = "";
      results.hidden = false;
      progress.hidden = false;
      var token = form.querySelector("input[name=csrfmiddlewaretoken]").value;
      var counts = { created: 0, duplicate: 0, refused: 0 };
      var total = chosen.length, sent = 0;
      var queue = batches();
      function next() {
        progress.textContent = format(form.dataset.textProgress, { done: sent, total: total });
        if (!queue.length) {
          progress.textContent = format(form.dataset.textSummary, counts);
          reload.hidden = false;
          return;
        }
        var batch = queue.shift();
        var body = new FormData();
        batch.forEach(function (entry) { body.append("files", entry.file, entry.path); });
        fetch(form.action || window.location.pathname, {
          method: "POST",
          body: body,
          credentials: "same-origin",
          headers: { Accept: "application/json", "X-CSRFToken": token },
        })
          .then(function (response) {
            return response.json().then(function (data) { return { ok: response.ok, data: data }; });
          })
          .then(function (answer) {
            if (!answer.ok) throw new Error((answer.data.error && answer.data.error.message) || "");
            answer.data.results.forEach(function (result) {
              counts[result.outcome] += 1;
              show(result);
            });
            // The progress of their indexing shows above the list while the rest is sent.
            if (counts.created) document.dispatchEvent(new CustomEvent("documents:uploaded"));
            sent += batch.length;
            next();
          })
          .catch(function (error) {
            progress.textContent = format(form.dataset.textFailed, { reason: error.message });
            button.disabled = false;
            reload.hidden = false;
          });
      }
      next();
    });
    reload.addEventListener("click", function () { window.location.reload(); });
  }

  // While a document is pending or processing, its row refreshes itself; while the tenant's
  // documents are being indexed, the progress line and bar above the list do too (also from
  // the moment an upload on this page created documents).
  function pollDocuments() {
    var table = document.querySelector("table[data-documents]");
    var meter = document.querySelector("[data-ingestion-progress]");
    var url = (meter && meter.dataset.statusUrl) || (table && table.dataset.statusUrl);
    if (!url) return;
    var ids = table ? Array.prototype.map.call(table.querySelectorAll("tr[data-document-id]"), function (row) {
      return row.dataset.documentId;
    }) : [];
    var delay = 1500, running = false;
    function tick() {
      fetch(url + "?ids=" + ids.join(","), { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : Promise.reject(response.status); })
        .then(function (data) {
          data.documents.forEach(update);
          if (data.progress) showProgress(data.progress);
          if (data.in_progress || (data.progress && data.progress.active)) window.setTimeout(tick, delay);
          else running = false;
        })
        .catch(function () { window.setTimeout(tick, delay * 4); });
    }
    function start() {
      if (running) return;
      running = true;
      window.setTimeout(tick, delay);
    }
    function showProgress(progress) {
      if (!meter) return;
      meter.hidden = !progress.total;
      meter.querySelector("[data-progress-text]").textContent = progress.text;
      var bar = meter.querySelector("[data-progress-bar]");
      bar.max = progress.total || 1;
      bar.value = progress.done;
    }
    function update(state) {
      if (!table) return;
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
    document.addEventListener("documents:uploaded", start);
    if ((table && table.dataset.polling === "on") || (meter && meter.dataset.polling === "on")) start();
  }
})();
