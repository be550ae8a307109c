/* Agent inbox: the queue and the open conversation update live from the tenant's staff events. */
(function () {
  "use strict";
  var root = document.querySelector("[data-inbox]");
  if (!root) return;
  var text = DashboardSocket.strings();
  var openId = root.dataset.conversationId || null;
  var connection = document.querySelector("[data-connection]");
  var refreshing = false;

  // Re-read the queue from the server; a failed read is retried a few times.
  function refreshQueue(attempt) {
    attempt = attempt || 0;
    if (refreshing && attempt === 0) return;
    refreshing = true;
    fetch(window.location.href, { credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error("queue " + response.status);
        return response.text();
      })
      .then(function (html) {
        var page = new DOMParser().parseFromString(html, "text/html");
        var fresh = page.querySelector("[data-queue]");
        if (fresh) root.querySelector("[data-queue]").innerHTML = fresh.innerHTML;
        refreshing = false;
      })
      .catch(function () {
        if (attempt < 4) window.setTimeout(function () { refreshQueue(attempt + 1); }, 500 * (attempt + 1));
        else refreshing = false;
      });
  }

  function append(message, role, label) {
    var thread = root.querySelector("[data-thread]");
    if (!thread || thread.querySelector('[data-message-id="' + message.id + '"]')) return;
    var empty = thread.querySelector(".empty");
    if (empty) empty.remove();
    var item = document.createElement("li");
    item.className = "bubble bubble-" + role;
    item.setAttribute("data-message-id", message.id);
    var meta = document.createElement("div");
    meta.className = "bubble-meta";
    var strong = document.createElement("strong");
    strong.textContent = label;
    meta.appendChild(strong);
    var body = document.createElement("div");
    body.className = "bubble-text";
    body.textContent = message.content;
    item.appendChild(meta);
    item.appendChild(body);
    thread.appendChild(item);
  }

  var socket = DashboardSocket.open({
    onStatus: function (up) {
      connection.textContent = up ? text.connected : text.disconnected;
      connection.classList.toggle("ok", up);
      if (up && openId) socket && socket.send({ type: "subscribe", conversation_id: openId });
    },
    onEvent: function (event) {
      if (event.type === "user_message") {
        if (event.message.conversation_id === openId) append(event.message, "user", text.you);
        refreshQueue();
      } else if (event.type === "agent_message") {
        if (event.message.conversation_id === openId) append(event.message, "agent", text.agent + (event.message.author ? " · " + event.message.author : ""));
      } else if (event.type === "status") {
        refreshQueue();
      }
    },
  });

  // Replies go through the session + CSRF endpoint; the end user's socket receives them live.
  var form = root.querySelector("[data-reply-form]");
  if (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var data = new FormData(form);
      fetch(form.action, {
        method: "POST",
        body: data,
        credentials: "same-origin",
        headers: { Accept: "application/json", "X-CSRFToken": DashboardSocket.csrfToken() },
      })
        .then(function (response) { return response.json(); })
        .then(function (body) {
          if (body.ok && body.reply) {
            append(body.reply, "agent", text.agent);
            form.reset();
            var take = root.querySelector("[data-take-form]");
            if (take) take.remove();  // replying took the conversation
          } else {
            window.alert(body.message);
          }
        });
    });
  }
})();
