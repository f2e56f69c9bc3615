package api

import (
	"html/template"
	"net/http"
)

// docsPage renders /openapi.json in the browser with a few lines of plain JavaScript, so the
// docs work on an offline machine (huma's default renderers load from a CDN).
var docsPage = template.Must(template.New("docs").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>crunch-node API {{.}}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{font-size:1.5rem}h2{font-size:1.1rem;margin-top:2rem;border-bottom:1px solid #ddd}
.op{margin:.6rem 0}.m{display:inline-block;width:4.2rem;font:600 12px monospace;color:#fff;border-radius:3px;text-align:center;padding:1px 0;margin-right:.5rem}
.GET{background:#2b7a4b}.POST{background:#2962a8}.PATCH{background:#a86b29}.DELETE{background:#a82929}
code{font-size:14px}.d{color:#555;margin-left:4.9rem;font-size:14px}
</style></head><body>
<h1>crunch-node report API <small>{{.}}</small></h1>
<p>The machine-readable description is <a href="openapi.json">/openapi.json</a>. Job queues: <a href="riverui/">River UI</a> (admin). Leaderboard: <a href="./">dashboard</a>.</p>
<div id="ops">Loading…</div>
<script>
fetch('openapi.json').then(r=>r.json()).then(spec=>{
  const groups={};
  for(const [path,item] of Object.entries(spec.paths||{})){
    for(const [method,op] of Object.entries(item)){
      const tag=(op.tags||['Other'])[0];(groups[tag]=groups[tag]||[]).push({path,method:method.toUpperCase(),op});
    }
  }
  const root=document.getElementById('ops');root.textContent='';
  for(const tag of Object.keys(groups).sort()){
    const h=document.createElement('h2');h.textContent=tag;root.appendChild(h);
    for(const e of groups[tag].sort((a,b)=>a.path.localeCompare(b.path))){
      const d=document.createElement('div');d.className='op';
      const m=document.createElement('span');m.className='m '+e.method;m.textContent=e.method;
      const c=document.createElement('code');c.textContent=e.path;
      d.append(m,c);
      const s=document.createElement('div');s.className='d';
      s.textContent=(e.op.summary||'')+(e.op.description?' — '+e.op.description:'');
      d.appendChild(s);root.appendChild(d);
    }
  }
}).catch(err=>{document.getElementById('ops').textContent='Could not load openapi.json: '+err});
</script></body></html>`))

func docsHandler(version string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = docsPage.Execute(w, version)
	}
}
