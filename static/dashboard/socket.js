/* The dashboard's WebSocket: a short-lived access token, rendered into the page and renewed
   through a session + CSRF POST before each reconnection. */
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

    function freshToken() {
      return fetch(config.token_url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
      }).then(function (response) {
        if (!response.ok) throw new Error("token " + response.status);
        return response.json();
      }).then(function (data) { token = data.access; });
    }

    function connect() {
      var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
      socket = new WebSocket(scheme + window.location.host + config.path, ["bearer", token]);
      socket.addEventListener("open", function () { attempts = 0; options.onStatus(true); });
      socket.addEventListener("message", function (event) { options.onEvent(JSON.parse(event.data)); });
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
