"""The HTTP API: thin FastAPI routers that parse, authorise and call a service."""

from platone_bal.api.app import create_api
from platone_bal.api.context import ApiContext

__all__ = ["ApiContext", "create_api"]
