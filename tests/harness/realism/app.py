"""Assemble the realism server app: moto's WSGI app, patched, behind our middleware.

The moto patches are process-wide (they replace methods on moto's classes), so
they are installed once per process, bound to that process's one state.
"""

from __future__ import annotations

from wsgiref.types import WSGIApplication

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

from tests.harness.realism import idfilter, lifecycle, paging, rules, tagindex
from tests.harness.realism.middleware import RealismMiddleware
from tests.harness.realism.state import RealismState

_installed: list[RealismState] = []


def build_app(state: RealismState) -> WSGIApplication:
    if _installed:
        raise RuntimeError("the realism patches are already installed in this process")
    _installed.append(state)
    # Order matters where two modules wrap one handler: rules check first
    # (innermost), lifecycle records after moto acted, paging replaces describe.
    tagindex.install()  # a speed fix, no behaviour: before anything reads tags
    idfilter.install()  # a speed fix, no behaviour
    rules.install(state)
    lifecycle.install(state)
    paging.install(state)
    return RealismMiddleware(DomainDispatcherApplication(create_backend_app), state)
