/* The dashboard's WebSocket: a short-lived socket token (it opens the socket and nothing else),
   rendered into the page. A fresh one is fetched through a session + CSRF POST at half its
   lifetime and handed to the open socket ({"type": "renew"}), and before each reconnection. */
window.DashboardSocket = (function () {
  "use strict";

  function csrfToken() {
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function strings() {
    var result = {};
    var template = document.getElementById("chat-strings");
    if (template) {
      template.content.querySelectorAll("[data-key]").forEach(function (node) {
        result[node.dataset.key] = node.textContent;
      });
    }
    return result;
  }

  function open(options) {
    var config = JSON.parse(document.getElementById("socket-config").textContent);
    var token = config.token;
    var socket = null;
    var attempts = 0;
    var closedByUs = false;
    var renewTimer = null;

    function freshToken() {
      return fetch(config.token_url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
      }).then(function (response) {
        if (!response.ok) throw new Error("token " + response.status);
        return response.json();
      }).then(function (data) {
        token = data.token;
        if (data.renew_seconds) config.renew_seconds = data.renew_seconds;
      });
    }

    // Renew before the token expires, so that the open socket is not closed for it; a failed
    // fetch is tried again shortly (the token still has half its life).
    function scheduleRenewal(seconds) {
      window.clearTimeout(renewTimer);
      renewTimer = window.setTimeout(function () {
        freshToken().then(function () {
          if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "renew", token: token }));
          scheduleRenewal();
        }, function () { scheduleRenewal(10); });
      }, (seconds || config.renew_seconds || 60) * 1000);
    }

    function connect() {
      var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
      socket = new WebSocket(scheme + window.location.host + config.path, ["bearer", token]);
      socket.addEventListener("open", function () { attempts = 0; scheduleRenewal(); options.onStatus(true); });
      socket.addEventListener("message", function (event) {
        var data = JSON.parse(event.data);
        if (data.type === "renewed") return;
        options.onEvent(data);
      });
      socket.addEventListener("close", function () {
        options.onStatus(false);
        if (closedByUs) return;
        attempts += 1;
        var wait = Math.min(10000, 500 * Math.pow(2, attempts));
        window.setTimeout(function () { freshToken().then(connect, function () { window.setTimeout(connect, wait); }); }, wait);
      });
    }
    connect();
    window.addEventListener("beforeunload", function () { closedByUs = true; });
    return {
      send: function (payload) {
        if (!socket || socket.readyState !== WebSocket.OPEN) return false;
        socket.send(JSON.stringify(payload));
        return true;
      },
    };
  }

  return { open: open, strings: strings, csrfToken: csrfToken };
})();
