"""Mustache templates for message bodies and headers.

A thin re-export of the compiled :mod:`mailsflux._template`: a
:class:`Template` compiles once (syntax errors raise
:class:`~mailsflux.errors.TemplateSyntaxError` with the tag's line and
column) and renders per recipient into a C buffer; :func:`render` is the
one-shot form.  The whole Mustache spec is supported: interpolation,
sections, inverted sections, comments, partials, set delimiters, lambdas.
"""

from mailsflux._template import Template, render

__all__ = ["Template", "render"]
