"""The HTML of the catalog page (a Jinja template, autoescaped)."""

from __future__ import annotations

from typing import Final

TEMPLATE: Final = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Event catalog</title>
<style>
body { font: 15px/1.45 system-ui, sans-serif; margin: 1.5rem; color: #1d2330; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid #dde1e8;
         vertical-align: top; }
th { background: #f3f5f8; }
code { font-size: 90%; }
.own { background: #f6fbf2; }
</style>
</head>
<body>
<h1>Event catalog</h1>
<p>Every event type this app validates, with the JSON Schema of its payload.
The whole catalog: <a href="{{ json_url }}">catalog.json</a>
(<a href="{{ json_url }}?source=browser">what a browser may send</a>).</p>
<div style="overflow-x: auto">
<table>
<thead><tr><th>Event type</th><th>Source</th><th>Version</th><th>Description</th>
<th>First seen</th><th>Last seen</th><th>Schema</th></tr></thead>
<tbody>
{% for row in rows %}{% set e = row.entry %}
<tr{% if not e.builtin %} class="own"{% endif %}>
<td><code>{{ e.event_type }}</code>{% if e.aliases %}<br><small>alias
{{ e.aliases | join(", ") }}</small>{% endif %}</td>
<td>{{ e.source }}</td><td>{{ e.version }}</td><td>{{ e.description }}</td>
<td>{{ row.first or "" }}</td><td>{{ row.last or "" }}</td>
<td><a href="{{ row.link }}?version={{ e.version }}">JSON Schema</a></td>
</tr>
{% endfor %}
</tbody>
</table>
</div>
</body>
</html>
"""
