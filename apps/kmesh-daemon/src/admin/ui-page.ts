/**
 * The live page's document: inline style and script, no framework, no external asset (the admin address is often
 * reached through `kubectl port-forward` on a machine without network access). Every text from the mesh is set
 * with textContent, never as HTML. It polls /ui/state once a second and re-renders; the explain box asks
 * /ui/explain.
 */
export const UI_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>kmesh-daemon</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1b1f24; background: #fafbfc; }
  h1 { font-size: 1.3em; margin: 0 0 .3em; }
  h2 { font-size: 1.1em; margin: 1.4em 0 .4em; }
  .muted { color: #57606a; }
  .ok { color: #1a7f37; } .bad { color: #cf222e; }
  .service { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: .6em .9em; margin: .6em 0; }
  .service h3 { margin: 0; font-size: 1em; }
  table { border-collapse: collapse; margin: .4em 0; }
  th, td { text-align: left; padding: .15em .8em .15em 0; font-variant-numeric: tabular-nums; }
  th { font-weight: 600; color: #57606a; }
  .bar { display: inline-block; height: .7em; background: #54aeff; vertical-align: middle; }
  pre { background: #fff; border: 1px solid #d0d7de; padding: .6em; overflow: auto; }
  #refusals li { margin: .3em 0; }
  input { font: inherit; padding: .2em .4em; width: 16em; }
</style>
</head>
<body>
<h1>kmesh-daemon <span id="version" class="muted"></span></h1>
<div id="status">loading…</div>
<h2>Services</h2>
<div id="services"></div>
<h2>Last refusals</h2>
<ul id="refusals"></ul>
<h2>Explain a connect</h2>
<form id="explain-form"><input id="explain-input" placeholder="VIP:PORT, e.g. 10.96.0.10:80" autocomplete="off">
<button type="submit">explain</button></form>
<pre id="explain-out" class="muted">what the kernel does with a connect there, read from the pinned maps</pre>
<script>
(function () {
  'use strict'
  var el = function (tag, attrs, children) {
    var e = document.createElement(tag)
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === 'text') e.textContent = attrs[k]
      else if (k === 'class') e.className = attrs[k]
      else e.setAttribute(k, attrs[k])
    })
    ;(children || []).forEach(function (c) { if (c) e.appendChild(c) })
    return e
  }
  var bytes = function (n) {
    if (n < 1024) return n + ' B'
    if (n < 1048576) return (n / 1024).toFixed(1) + ' KiB'
    return (n / 1048576).toFixed(1) + ' MiB'
  }
  var conn = function (c) {
    if (!c) return '-'
    return c.active + ' open, ' + c.opened + ' opened, ' + bytes(c.bytesSent) + ' sent, ' + bytes(c.bytesReceived) + ' received'
  }
  function renderService(s) {
    var paths = s.paths.map(function (p) {
      var rows = p.outcomes.map(function (o) {
        var what = o.kind === 'rewrite' ? (o.address + (o.viaWaypoint ? ' (waypoint)' : '')) : (o.kind + ': ' + (o.reason || ''))
        return el('tr', { class: 'outcome', 'data-address': o.address || '' }, [
          el('td', { class: 'prio', text: o.priority === undefined || o.priority === null ? '-' : 'p' + o.priority }),
          el('td', { class: 'prob' }, [
            el('span', { class: 'bar', style: 'width:' + Math.max(1, Math.round(o.probability * 80)) + 'px' }),
            el('span', { text: ' ' + (o.probability * 100).toFixed(2) + '%' }),
          ]),
          el('td', { class: 'backend', text: o.backend || '-' }),
          el('td', { class: 'address', text: what }),
          el('td', { class: 'conns', text: conn(o.conn) }),
        ])
      })
      return el('div', { class: 'path', 'data-target': p.target }, [
        el('div', { class: 'muted', text: p.target + (p.error ? ' — ' + p.error : '') }),
        el('table', {}, [
          el('tr', {}, ['priority', 'share', 'backend', 'destination', 'connections'].map(function (h) { return el('th', { text: h }) })),
        ].concat(rows)),
      ])
    })
    return el('div', { class: 'service', 'data-key': s.key }, [
      el('h3', { text: s.hostname }),
      el('div', { class: 'muted', text: s.vips.join(', ') + ' · ' + s.mode + ' · ports ' + s.ports.map(function (p) { return p.port + '→' + p.targetPort }).join(', ') }),
      el('div', { class: 'service-conns', text: 'service: ' + conn(s.conn) }),
    ].concat(paths))
  }
  function refusal(kind, r, text) {
    return el('li', { class: 'refusal', 'data-kind': kind }, [el('b', { text: kind + ' ' }), el('span', { class: 'muted', text: r.at + ' ' }), el('span', { text: text })])
  }
  function render(st) {
    document.getElementById('version').textContent = st.version
    var status = document.getElementById('status')
    status.textContent = ''
    status.appendChild(el('span', { class: st.ready ? 'ok' : 'bad', text: st.ready ? 'ready' : 'not ready: ' + st.notReady }))
    status.appendChild(el('span', { class: 'muted', text: ' · ' + st.mode + ' mode · node ' + (st.node || '-') + ' · ' + st.workloads + ' workloads, ' + st.servicesTotal + ' services' + (st.telemetry ? ' · ' + st.telemetry.records + ' connection records, ' + st.telemetry.lost + ' lost' : '') + ' · updated ' + st.at }))
    var box = document.getElementById('services')
    box.textContent = ''
    st.services.forEach(function (s) { box.appendChild(renderService(s)) })
    if (st.servicesTotal > st.services.length) box.appendChild(el('p', { class: 'muted', text: (st.servicesTotal - st.services.length) + ' more services: see /config_dump?only=services' }))
    var ref = document.getElementById('refusals')
    ref.textContent = ''
    var r = st.refusals || {}
    if (r.meshFile) ref.appendChild(refusal('mesh file', r.meshFile, r.meshFile.reason))
    if (r.xdsNack) ref.appendChild(refusal('xDS NACK', r.xdsNack, r.xdsNack.message))
    if (r.authz) ref.appendChild(refusal('authorization', r.authz, r.authz.reason))
    if (!ref.children.length) ref.appendChild(el('li', { class: 'muted', text: 'none' }))
    document.body.setAttribute('data-updated', st.at)
  }
  function poll() {
    fetch('/ui/state').then(function (r) { return r.json() }).then(render).catch(function (e) {
      document.getElementById('status').textContent = 'cannot reach the daemon: ' + e
    }).then(function () { setTimeout(poll, 1000) })
  }
  document.getElementById('explain-form').addEventListener('submit', function (ev) {
    ev.preventDefault()
    var out = document.getElementById('explain-out')
    var target = document.getElementById('explain-input').value
    fetch('/ui/explain?target=' + encodeURIComponent(target)).then(function (r) {
      return r.ok ? r.json().then(function (j) { return j.text }) : r.text()
    }).then(function (t) { out.textContent = t; out.className = ''; out.setAttribute('data-target', target) })
  })
  poll()
})()
</script>
</body>
</html>
`
