/* Live chat: ask the tenant's bot as a customer would; tokens stream in, then the citations. */
(function () {
  "use strict";
  var root = document.querySelector("[data-live-chat]");
  if (!root) return;
  var text = DashboardSocket.strings();
  var thread = root.querySelector("[data-chat-thread]");
  var form = root.querySelector("[data-chat-form]");
  var input = form.querySelector("textarea");
  var sendButton = root.querySelector("[data-chat-send]");
  var stopButton = root.querySelector("[data-chat-stop]");
  var connection = root.querySelector("[data-connection]");
  var conversationId = null;
  var current = null;

  function bubble(role, label, content) {
    var item = document.createElement("li");
    item.className = "bubble bubble-" + role;
    var meta = document.createElement("div");
    meta.className = "bubble-meta";
    var strong = document.createElement("strong");
    strong.textContent = label;
    meta.appendChild(strong);
    var body = document.createElement("div");
    body.className = "bubble-text";
    body.textContent = content || "";
    item.appendChild(meta);
    item.appendChild(body);
    thread.appendChild(item);
    thread.scrollTop = thread.scrollHeight;
    return item;
  }

  function showCitations(item, citations) {
    if (!citations || !citations.length) return;
    var box = document.createElement("div");
    box.className = "citations";
    box.setAttribute("data-citations", "");
    var label = document.createElement("span");
    label.className = "muted small";
    label.textContent = text.sources;
    box.appendChild(label);
    citations.forEach(function (citation, index) {
      var details = document.createElement("details");
      details.className = "citation";
      var summary = document.createElement("summary");
      summary.textContent = "[" + (index + 1) + "] " + citation.document_title;
      var passage = document.createElement("blockquote");
      passage.className = "passage";
      passage.textContent = citation.text;
      details.appendChild(summary);
      // A crawled page's citation links to the page (only web addresses become links).
      if (citation.source_url && /^https?:\/\//i.test(citation.source_url)) {
        var link = document.createElement("a");
        link.href = citation.source_url;
        link.target = "_blank";
        link.rel = "noopener noreferrer";
        link.className = "small";
        link.textContent = citation.source_url;
        details.appendChild(link);
      }
      details.appendChild(passage);
      box.appendChild(details);
    });
    item.appendChild(box);
  }

  // While an answer streams, Send waits and Stop ends the answer (what was said is kept).
  function answering(busy) {
    sendButton.disabled = busy;
    stopButton.hidden = !busy;
  }

  var socket = DashboardSocket.open({
    onStatus: function (up) {
      connection.textContent = up ? text.connected : text.disconnected;
      connection.classList.toggle("ok", up);
      sendButton.disabled = !up;
      if (!up) stopButton.hidden = true;
    },
    onEvent: function (event) {
      // Only this page's own answers name its conversation: the staff events that reach the
      // socket (another customer's handoff) must not redirect the next message there.
      if ((event.type === "token" || event.type === "done") && event.conversation_id) conversationId = event.conversation_id;
      if (event.type === "token") {
        if (!current) current = bubble("assistant", text.assistant, "");
        var body = current.querySelector(".bubble-text");
        body.classList.add("typing");
        body.textContent += event.delta;
        thread.scrollTop = thread.scrollHeight;
      } else if (event.type === "done") {
        if (event.message) {
          if (!current) current = bubble("assistant", text.assistant, "");
          var done = current.querySelector(".bubble-text");
          done.classList.remove("typing");
          done.textContent = event.message.content;
          current.setAttribute("data-done", "");
          showCitations(current, event.message.citations);
        }
        if (event.status === "handoff") bubble("system", "", text.handoff);
        current = null;
        answering(false);
      } else if (event.type === "stopped") {
        if (current) current.querySelector(".bubble-text").classList.remove("typing");
        current = null;
        answering(false);
      } else if (event.type === "agent_message") {
        bubble("agent", text.agent + (event.message.author ? " · " + event.message.author : ""), event.message.content);
      } else if (event.type === "error") {
        bubble("system", "", text.error + " " + event.error.message);
        current = null;
        answering(false);
      }
    },
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var message = input.value.trim();
    if (!message) return;
    var payload = { type: "message", message: message };
    if (conversationId) payload.conversation_id = conversationId;
    if (!socket.send(payload)) return;
    bubble("user", text.you, message);
    input.value = "";
    answering(true);
  });
  stopButton.addEventListener("click", function () { socket.send({ type: "stop" }); });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); form.requestSubmit(); }
  });
  root.querySelector("[data-chat-new]").addEventListener("click", function () {
    conversationId = null;
    thread.textContent = "";
    input.focus();
  });
})();
