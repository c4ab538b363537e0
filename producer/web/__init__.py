"""The web process: the HTTP API for other services and the operators' dashboard (Starlette).

Run it with ``uvicorn --factory producer.web.app:app_from_env`` (the Procfile's
``web:`` line). Modules:

- ``app``: :func:`create_app` (routes, error handlers, the asyncpg pool and
  Redis client of its lifespan) and :func:`app_from_env`, the factory.
- ``api``: the ``/api`` routes: template, review, submit, list, status,
  errors.csv, cancel; bearer-token checks and query parameters.
- ``webhooks_api``: the ``/api/webhooks`` routes and the events feed ``/api/events``.
- ``errors``: :class:`ApiError` and the handlers that answer ``{"error": ...}``.
- ``uploads``: a CSV body streamed to a temporary file within the upload limit.
- ``openapi``: the hand-written OpenAPI description, ``/api/openapi.json``.
- ``tokens``: the API's bearer tokens (service tokens per tenant, operator
  tokens): create, verify, revoke.
- ``operators``: who is an operator (token or signed cookie) and CSRF tokens.
- ``dashboard``: the operators' pages and their actions (Jinja2 ``templates/``,
  ``static/``).
- ``webhooks_pages``: the operators' ``/webhooks`` page (deliveries) and its redeliver.
- ``overview``: the figures the dashboard shows (imports, queues, workers).
- ``metrics``: ``/metrics`` for Prometheus.
"""
