/* The platform's website chat widget: <script src="https://HOST/widget.js" data-key="pk_…" async></script>
   A launcher and a panel inside a shadow root (the page's CSS cannot reach in, ours cannot leak out).
   Answers stream over the WebSocket /ws/widget/, or over server-sent events when sockets are blocked.
   Optional API: PlatformWidget.identify({id, hash, name, email}), .open(), .close().
   With data-preview (the dashboard's preview page only) it opens no session and sends nothing: the
   panel shows data-greeting as a visitor would see it, so no allowed origin is needed to preview. */
(function () {
  "use strict";
  if (window.PlatformWidget && window.PlatformWidget._loaded) return;
  var script = document.currentScript || document.querySelector("script[data-key][src*='widget.js']");
  if (!script) return;
  var KEY = script.getAttribute("data-key") || "";
  var PREVIEW = script.hasAttribute("data-preview");
  var BASE = new URL(script.src, location.href).origin;
  var WS_BASE = BASE.replace(/^http/, "ws");
  var STORE = "platform-widget:" + KEY;
  var TEXT = {
    en: {
      open: "Chat with us", close: "Close chat", title: "Customer service", send: "Send",
      placeholder: "Type your question…", person: "Talk to a person", waiting: "A person will join shortly. You can keep writing.",
      joined: "You are now chatting with a person.", unavailable: "Chat is unavailable on this page.",
      busy: "Too many messages right now. Please try again in a moment.", error: "Something went wrong. Please try again.",
      sources: "Sources", helpful: "Helpful", unhelpful: "Not helpful", thanks: "Thanks for your feedback.",
      you: "You", bot: "Assistant", agent: "Agent", reconnecting: "Reconnecting…",
      preview: "Preview: messages are not sent from here."
    },
    "zh-Hant": {
      open: "線上客服", close: "關閉對話", title: "線上客服", send: "送出",
      placeholder: "請輸入您的問題…", person: "轉接真人客服", waiting: "已為您轉接真人客服，請稍候，您可以繼續留言。",
      joined: "真人客服已加入對話。", unavailable: "此網頁目前無法使用線上客服。",
      busy: "訊息太頻繁了，請稍後再試。", error: "發生錯誤，請再試一次。",
      sources: "資料來源", helpful: "有幫助", unhelpful: "沒有幫助", thanks: "感謝您的回饋。",
      you: "您", bot: "智慧客服", agent: "客服人員", reconnecting: "重新連線中…",
      preview: "預覽模式：此處的訊息不會送出。"
    }
  };
  function pickLocale(value) {
    value = value || navigator.language || "en";
    return /^zh/i.test(value) ? "zh-Hant" : "en";
  }
  var locale = pickLocale(script.getAttribute("data-locale"));
  var t = function (key) { return TEXT[locale][key]; };

  var state = { token: null, expires: 0, conversation: null, identity: null, socket: null, retries: 0,
    streaming: null, unavailable: false, opened: false, sessionPromise: null, handedOff: false };
  var stored = {};
  try { stored = JSON.parse(localStorage.getItem(STORE) || "{}"); } catch (e) { stored = {}; }
  function save() { try { localStorage.setItem(STORE, JSON.stringify(stored)); } catch (e) { /* private mode */ } }

  // --- the shadow root ---------------------------------------------------------------------
  var host = document.createElement("div");
  host.setAttribute("data-platform-widget", "");
  var root = host.attachShadow({ mode: "open" });
  var CSS = ":host{all:initial!important}*{box-sizing:border-box;font-family:system-ui,-apple-system,'Noto Sans TC','PingFang TC',sans-serif}" +
    ".launcher{position:fixed;right:20px;bottom:20px;z-index:2147483000;border:0;border-radius:28px;padding:14px 20px;background:#1f6feb;color:#fff;font-size:15px;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25)}" +
    ".launcher:focus-visible,button:focus-visible,textarea:focus-visible{outline:3px solid #f0b400;outline-offset:2px}" +
    ".panel{position:fixed;right:20px;bottom:84px;z-index:2147483000;width:370px;max-width:calc(100vw - 24px);height:560px;max-height:calc(100vh - 110px);background:#fff;color:#1c1c1c;border-radius:12px;box-shadow:0 8px 30px rgba(0,0,0,.3);display:flex;flex-direction:column;overflow:hidden}" +
    ".panel[hidden]{display:none}header{background:#1f6feb;color:#fff;padding:12px 14px;display:flex;justify-content:space-between;align-items:center;font-size:16px}" +
    "header button{background:transparent;border:0;color:#fff;font-size:22px;cursor:pointer;line-height:1}" +
    ".log{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:8px;background:#f6f8fa}" +
    ".msg{max-width:85%;padding:8px 11px;border-radius:10px;white-space:pre-wrap;word-wrap:break-word;font-size:14px;line-height:1.5}" +
    ".user{align-self:flex-end;background:#1f6feb;color:#fff}.assistant,.agent{align-self:flex-start;background:#fff;border:1px solid #d0d7de}" +
    ".agent{border-color:#2da44e}.who{display:block;font-size:11px;color:#57606a;margin-bottom:2px}.user .who{color:#dbe9ff}.notice{align-self:center;font-size:12px;color:#57606a;text-align:center}" +
    "details{margin-top:6px;font-size:12px}summary{cursor:pointer;color:#0969da}details p{margin:4px 0;color:#444;max-height:140px;overflow:auto}" +
    ".rate{margin-top:4px;display:flex;gap:6px}.rate button{border:1px solid #d0d7de;background:#fff;border-radius:6px;cursor:pointer;padding:3px 8px;line-height:0}.rate svg{width:16px;height:16px;fill:#57606a}.rate .down svg{transform:rotate(180deg)}.rate button[aria-pressed=true]{background:#ddf4ff}" +
    "form{display:flex;gap:6px;padding:8px;border-top:1px solid #d0d7de}textarea{flex:1;resize:none;border:1px solid #d0d7de;border-radius:8px;padding:8px;font-size:14px;height:42px}" +
    "form button{border:0;background:#1f6feb;color:#fff;border-radius:8px;padding:0 14px;cursor:pointer}form button:disabled{opacity:.5}" +
    ".person{border:0;background:transparent;color:#0969da;font-size:13px;padding:6px;cursor:pointer;text-decoration:underline}" +
    "@media (max-width:480px){.panel{right:0;bottom:0;width:100vw;max-width:100vw;height:100%;max-height:100%;border-radius:0}}";
  if (root.adoptedStyleSheets !== undefined && window.CSSStyleSheet && "replaceSync" in CSSStyleSheet.prototype) {
    var sheet = new CSSStyleSheet(); sheet.replaceSync(CSS); root.adoptedStyleSheets = [sheet];
  } else {
    var style = document.createElement("style"); style.textContent = CSS; root.appendChild(style);
  }
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) { node.setAttribute(name, attrs[name]); });
    if (text != null) node.textContent = text;
    return node;
  }
  var launcher = el("button", { "class": "launcher", type: "button", "aria-expanded": "false", "aria-controls": "pw-panel" }, t("open"));
  var panel = el("section", { "class": "panel", id: "pw-panel", role: "dialog", "aria-label": t("title"), hidden: "" });
  var header = el("header"); var title = el("span", null, t("title"));
  var closer = el("button", { type: "button", "aria-label": t("close") }, "×");
  header.appendChild(title); header.appendChild(closer);
  var log = el("div", { "class": "log", role: "log", "aria-live": "polite", "aria-relevant": "additions" });
  var person = el("button", { "class": "person", type: "button" }, t("person"));
  var form = el("form"); var input = el("textarea", { "aria-label": t("placeholder"), placeholder: t("placeholder"), maxlength: "4000" });
  var sendButton = el("button", { type: "submit" }, t("send"));
  form.appendChild(input); form.appendChild(sendButton);
  panel.appendChild(header); panel.appendChild(log); panel.appendChild(person); panel.appendChild(form);
  root.appendChild(launcher); root.appendChild(panel);

  function scroll() { log.scrollTop = log.scrollHeight; }
  function notice(text) { var n = el("div", { "class": "notice", role: "status" }, text); log.appendChild(n); scroll(); return n; }
  function bubble(role, text, author) {
    var node = el("div", { "class": "msg " + role });
    var who = role === "user" ? t("you") : role === "agent" ? (author || t("agent")) : t("bot");
    node.appendChild(el("span", { "class": "who" }, who));
    var body = el("span", { "class": "body" }, text || ""); node.appendChild(body);
    log.appendChild(node); scroll();
    return { node: node, body: body };
  }
  function finishAnswer(target, message) {
    if (!message) return;
    target.body.textContent = message.content;
    if (message.citations && message.citations.length) {
      var details = el("details"); details.appendChild(el("summary", null, t("sources") + " (" + message.citations.length + ")"));
      message.citations.forEach(function (c) {
        var item = el("p"), name = el("strong", null, c.document_title);
        // A crawled page's citation links to the page (only web addresses become links).
        if (c.source_url && /^https?:\/\//i.test(c.source_url)) {
          var link = el("a", { href: c.source_url, target: "_blank", rel: "noopener noreferrer" });
          link.appendChild(name); name = link;
        }
        item.appendChild(name); item.appendChild(document.createTextNode(" — " + c.text));
        details.appendChild(item);
      });
      target.node.appendChild(details);
    }
    if (message.role === "assistant" && message.id && state.conversation) addRating(target.node, message, state.conversation);
    scroll();
  }
  // A thumb drawn, not an emoji: not every visitor's system has an emoji font.
  var THUMB = "M2 21h4V9H2v12zm20-11a2 2 0 0 0-2-2h-6.3l1-4.6v-.3c0-.4-.2-.8-.4-1.1L13.2 1 6.6 7.6C6.2 7.9 6 8.4 6 9v10a2 2 0 0 0 2 2h9c.8 0 1.5-.5 1.8-1.2l3-7.1.2-.7v-2z";
  function addRating(node, message, conversation) {
    var box = el("div", { "class": "rate" }); var thanked = false;
    var given = message.feedback && message.feedback.rating;
    ["up", "down"].forEach(function (rating) {
      var b = el("button", { type: "button", "class": rating, "aria-label": t(rating === "up" ? "helpful" : "unhelpful"), "aria-pressed": String(given === rating) });
      var svg = document.createElementNS("http://www.w3.org/2000/svg", "svg"); svg.setAttribute("viewBox", "0 0 24 24"); svg.setAttribute("aria-hidden", "true");
      var path = document.createElementNS("http://www.w3.org/2000/svg", "path"); path.setAttribute("d", THUMB);
      svg.appendChild(path); b.appendChild(svg);
      b.addEventListener("click", function () {
        api("POST", "/v1/widget/conversations/" + conversation + "/messages/" + message.id + "/feedback", { rating: rating })
          .then(function () { Array.prototype.forEach.call(box.children, function (x) { x.setAttribute("aria-pressed", String(x === b)); });
            if (!thanked) { thanked = true; notice(t("thanks")); } }).catch(function () { notice(t("error")); });
      });
      box.appendChild(b);
    });
    node.appendChild(box);
  }

  // --- the session --------------------------------------------------------------------------
  function openSession() {
    var body = { public_key: KEY, locale: locale, page_url: location.href.slice(0, 1000) };
    if (state.identity) {
      body.visitor_id = state.identity.id; body.visitor_hash = state.identity.hash;
      if (state.identity.name) body.name = state.identity.name;
      if (state.identity.email) body.email = state.identity.email;
    }
    // Also when identifying: the anonymous history this browser holds joins the identified visitor.
    if (stored.resume) body.resume_token = stored.resume;
    return fetch(BASE + "/v1/widget/sessions", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) })
      .then(function (response) {
        return response.json().then(function (data) {
          if (!response.ok) { var error = new Error((data.error && data.error.code) || "error"); error.status = response.status; throw error; }
          return data;
        });
      }).then(function (data) {
        state.token = data.token; state.expires = data.expires_at * 1000;
        if (data.resume_token) { stored.resume = data.resume_token; save(); }
        else if (stored.resume) { delete stored.resume; save(); } // merged: the token is spent
        if (data.widget && data.widget.locale && TEXT[data.widget.locale]) locale = data.widget.locale;
        if (data.widget && data.widget.greeting && !log.querySelector(".msg")) bubble("assistant", data.widget.greeting);
        var refreshIn = Math.max(30000, (state.expires - Date.now()) * 0.8);
        clearTimeout(state.refresh); state.refresh = setTimeout(renew, refreshIn);
        return data;
      });
  }
  function session() {
    if (state.token && Date.now() < state.expires - 30000) return Promise.resolve();
    if (!state.sessionPromise) {
      state.sessionPromise = openSession().catch(function (error) {
        // A refused origin gets no CORS headers: the browser reports a network error, not the 403.
        var status = error.status;
        if (status === 401 || status === 403 || status === 404 || (!status && !state.expires)) unavailable();
        else notice(t(status === 429 ? "busy" : "error"));
        throw error;
      }).finally(function () { state.sessionPromise = null; });
    }
    return state.sessionPromise;
  }
  function renew() {
    state.token = null;
    session().then(function () {
      if (state.socket && state.socket.readyState === 1) state.socket.send(JSON.stringify({ type: "renew", token: state.token }));
    }).catch(function () { /* told in the panel */ });
  }
  function unavailable() {
    if (state.unavailable) return;
    state.unavailable = true; input.disabled = true; sendButton.disabled = true; person.hidden = true;
    notice(t("unavailable"));
  }
  function api(method, path, body) {
    return session().then(function () {
      return fetch(BASE + path, { method: method, headers: { "Content-Type": "application/json", Authorization: "Bearer " + state.token },
        body: body ? JSON.stringify(body) : undefined });
    }).then(function (response) {
      if (response.status === 429) { notice(t("busy")); throw new Error("rate_limited"); }
      if (!response.ok) throw new Error(String(response.status));
      return response.json();
    });
  }
  function loadHistory() {
    if (!stored.conversation) return Promise.resolve();
    return api("GET", "/v1/widget/conversations/" + stored.conversation).then(function (conversation) {
      state.conversation = conversation.id;
      conversation.messages.forEach(function (m) { var b = bubble(m.role, m.content, m.author); if (m.role !== "user") finishAnswer(b, m); });
      if (conversation.status === "handoff") { state.handedOff = true; person.hidden = true; }
      if (conversation.status === "closed") { state.conversation = null; delete stored.conversation; save(); }
    }).catch(function () { delete stored.conversation; save(); });
  }

  // --- the socket, with SSE as the fallback ---------------------------------------------------
  function connect() {
    if (state.unavailable || state.noSocket) return;
    session().then(function () {
      var socket = new WebSocket(WS_BASE + "/ws/widget/?token=" + encodeURIComponent(state.token));
      state.socket = socket;
      var opened = false;
      socket.onopen = function () {
        opened = true; state.retries = 0;
        if (state.reconnectNotice) { state.reconnectNotice.remove(); state.reconnectNotice = null; }
        if (state.conversation) socket.send(JSON.stringify({ type: "subscribe", conversation_id: state.conversation }));
      };
      socket.onmessage = function (event) { handle(JSON.parse(event.data)); };
      socket.onclose = function (event) {
        state.socket = null;
        if (!opened && state.retries >= 2) { state.noSocket = true; return; }  // blocked: SSE from now on
        if (event.code === 4403) { unavailable(); return; }
        if (event.code === 4401) state.token = null;
        state.retries += 1;
        if (!state.reconnectNotice && opened) state.reconnectNotice = notice(t("reconnecting"));
        setTimeout(connect, Math.min(30000, 1000 * Math.pow(2, state.retries)));
      };
    }).catch(function () { /* told in the panel */ });
  }
  function handle(event) {
    if (event.type === "token") {
      if (!state.streaming) state.streaming = bubble("assistant", "");
      state.streaming.body.textContent += event.delta; scroll();
    } else if (event.type === "done") {
      if (event.conversation_id) setConversation(event.conversation_id);
      if (event.message) finishAnswer(state.streaming || bubble("assistant", ""), event.message);
      else if (state.streaming) state.streaming.node.remove();
      state.streaming = null; sendButton.disabled = false;
      if (event.handed_off) waiting();
    } else if (event.type === "agent_message") {
      if (!state.joined) { state.joined = true; notice(t("joined")); }
      var m = event.message; finishAnswer(bubble("agent", m.content, m.author), m);
    } else if (event.type === "status" && event.status === "handoff") {
      if (!state.handedOff) waiting();
    } else if (event.type === "error") {
      state.streaming = null; sendButton.disabled = false;
      var code = event.error && event.error.code;
      notice(code === "rate_limited" || code === "daily_cap_reached" || code === "quota_exceeded" ? t("busy") : (event.error && event.error.message) || t("error"));
    }
  }
  function waiting() { state.handedOff = true; person.hidden = true; notice(t("waiting")); }
  function setConversation(id) { state.conversation = id; stored.conversation = id; save(); }
  function sendOverStream(text) {
    var body = { message: text, page_url: location.href.slice(0, 1000) };
    if (state.conversation) body.conversation_id = state.conversation;
    session().then(function () {
      return fetch(BASE + "/v1/widget/chat/stream", { method: "POST", headers: { "Content-Type": "application/json", Authorization: "Bearer " + state.token }, body: JSON.stringify(body) });
    }).then(function (response) {
      if (!response.ok) return response.json().then(function (data) { handle({ type: "error", error: data.error }); });
      var reader = response.body.getReader(); var decoder = new TextDecoder(); var buffer = "";
      function pump() {
        return reader.read().then(function (chunk) {
          if (chunk.done) return;
          buffer += decoder.decode(chunk.value, { stream: true });
          var blocks = buffer.split("\n\n"); buffer = blocks.pop();
          blocks.forEach(function (block) {
            var kind = (block.match(/^event: (.*)$/m) || [])[1]; var data = (block.match(/^data: (.*)$/m) || [])[1];
            if (kind && data) { var payload = JSON.parse(data); payload.type = kind; handle(payload); }
          });
          return pump();
        });
      }
      return pump();
    }).catch(function () { handle({ type: "error", error: { message: t("error") } }); });
  }
  function send(text) {
    text = text.trim(); if (!text || state.unavailable) return;
    if (PREVIEW) { bubble("user", text); input.value = ""; notice(t("preview")); return; }
    bubble("user", text); input.value = ""; sendButton.disabled = true;
    if (state.socket && state.socket.readyState === 1) {
      var frame = { type: "message", message: text, page_url: location.href.slice(0, 1000) };
      if (state.conversation) frame.conversation_id = state.conversation;
      state.socket.send(JSON.stringify(frame));
    } else { sendOverStream(text); }
  }
  function handoff() {
    if (PREVIEW) { notice(t("preview")); return; }
    if (!state.conversation) { send(locale === "zh-Hant" ? "我想和真人客服對話" : "I would like to talk to a person"); return; }
    api("POST", "/v1/widget/conversations/" + state.conversation + "/handoff", {}).then(function (c) {
      if (c.status === "handoff" && !state.handedOff) waiting();
      if (state.socket && state.socket.readyState === 1) state.socket.send(JSON.stringify({ type: "subscribe", conversation_id: state.conversation }));
    }).catch(function () { /* told in the panel */ });
  }

  // --- opening and closing ------------------------------------------------------------------
  var started = false;
  function open(keepFocus) {
    panel.hidden = false; launcher.setAttribute("aria-expanded", "true"); launcher.textContent = t("close");
    if (!started) {
      started = true;
      if (PREVIEW) { var greeting = script.getAttribute("data-greeting"); if (greeting) bubble("assistant", greeting); }
      else session().then(loadHistory).then(connect).catch(function () { /* told in the panel */ });
    }
    if (keepFocus !== true) setTimeout(function () { input.focus(); }, 0);
  }
  function close() { panel.hidden = true; launcher.setAttribute("aria-expanded", "false"); launcher.textContent = t("open"); launcher.focus(); }
  launcher.addEventListener("click", function () { if (panel.hidden) open(); else close(); });
  closer.addEventListener("click", close);
  panel.addEventListener("keydown", function (event) { if (event.key === "Escape") close(); });
  person.addEventListener("click", handoff);
  form.addEventListener("submit", function (event) { event.preventDefault(); send(input.value); });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); send(input.value); }
  });

  window.PlatformWidget = {
    _loaded: true,
    identify: function (identity) {
      state.identity = identity && identity.id ? { id: String(identity.id), hash: identity.hash, name: identity.name, email: identity.email } : null;
      state.token = null; if (state.socket) state.socket.close(); state.conversation = null;
      if (!stored.resume) delete stored.conversation; // else it joins the identified visitor: keep showing it
      save();
      log.textContent = ""; started = false; state.unavailable = false; input.disabled = false; sendButton.disabled = false; person.hidden = false;
      if (!panel.hidden) { started = true; session().then(loadHistory).then(connect).catch(function () {}); }
    },
    open: open,
    close: close
  };
  (document.body || document.documentElement).appendChild(host);
  if (PREVIEW) open(true);  // shown open, without taking the focus from the dashboard around it
})();
