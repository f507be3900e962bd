"""AWS realism for the test moto server: EC2 rules and faults moto leaves out.

moto accepts things real EC2 refuses (two ENIs at one device index, deleting an
attached ENI, attaching past the instance-type limit...) and never throttles,
lags or fails. A controller tested only against plain moto can therefore pass
while being wrong on AWS. This package runs moto's own server with patched
backends behind a small WSGI layer; every rule is a switch a test turns on at
runtime through `/_realism/*` (see `control.RealismControl`). With every switch
off the server is plain moto, plus call counters.

Modules: `config` (switch schema, AWS presets), `limits` (token buckets, fault
dice), `state` (the per-process state behind one lock), `errors` (AWS-coded
errors), `patching` + `rules` / `lifecycle` / `paging` (moto patches),
`middleware` (WSGI + control API), `journal` (every mutating call: caller,
ENI, answer), `app` (assembly), `__main__` (launcher),
`control` (the tests' client).
"""
