// Letterbox inspector: follow the page's event stream and, on every "change" event,
// fetch the page again and swap its #live element. One fetch at a time; changes that
// arrive meanwhile cause one more. Without this script a <noscript> meta refresh reloads
// the page instead.
(function () {
  'use strict';
  var events = document.body.dataset.events;
  var live = document.getElementById('live');
  var status = document.getElementById('live-status');
  if (!events || !live || !window.EventSource || !window.fetch) {
    return;
  }
  var busy = false;
  var again = false;

  function show(text, state) {
    if (status) {
      status.textContent = text;
      status.dataset.state = state;
    }
  }

  function refresh() {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    fetch(location.href, { cache: 'no-store', credentials: 'same-origin' })
      .then(function (resp) { return resp.text(); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, 'text/html').getElementById('live');
        if (fresh) {
          live.replaceChildren.apply(live, Array.prototype.slice.call(fresh.childNodes));
          document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
        }
      })
      .catch(function () { show('offline', 'error'); })
      .finally(function () {
        busy = false;
        if (again) {
          again = false;
          refresh();
        }
      });
  }

  var source = new EventSource(events);
  source.addEventListener('open', function () { show('live', 'live'); });
  source.addEventListener('error', function () { show('reconnecting…', 'error'); });
  source.addEventListener('change', refresh);
})();
