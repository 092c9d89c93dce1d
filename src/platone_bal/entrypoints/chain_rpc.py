"""Read-only Ethereum JSON-RPC for the embedded chain (`BAL_CHAIN_RPC_PORT`).

Outside tools — `bal verify --rpc`, web3.py, ethers, a block explorer — check anchors
against the embedded chain exactly as they would against Besu or ganache. Only reads
are served: `eth_chainId`, `eth_blockNumber`, `eth_getBlockByNumber`,
`eth_getTransactionReceipt`, `eth_getLogs`, `eth_call` (plus `net_version` and
`web3_clientVersion`, which clients probe). Nothing here can send a transaction.

Answers are taken from web3's own view of the chain (camelCase keys, as JSON-RPC
names them) and encoded the JSON-RPC way: quantities as 0x-hex, data as 0x-hex.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hexbytes import HexBytes
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from web3 import Web3
from web3.exceptions import BlockNotFound, TransactionNotFound

from platone_bal import __version__
from platone_bal.codecs import json_depth

MAX_LOG_RANGE = 100_000
MAX_BATCH = 100


class RpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def encode(value: Any) -> Any:
    """web3's Python values -> JSON-RPC encoding."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return hex(value)
    if isinstance(value, bytes | bytearray | HexBytes):
        return "0x" + bytes(value).hex()
    if isinstance(value, dict) or hasattr(value, "items"):
        return {key: encode(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [encode(item) for item in value]
    return value


def _block_id(value: Any) -> int | str:
    if value in (None, "latest", "safe", "finalized", "pending"):
        return "latest"
    if value == "earliest":
        return 0
    if isinstance(value, str) and value.startswith("0x"):
        try:
            return int(value, 16)
        except ValueError:
            pass
    raise RpcError(-32602, f"invalid block number {value!r}")


def _param(params: list[Any], index: int, default: Any = None) -> Any:
    return params[index] if len(params) > index else default


class ReadOnlyRpc:
    """Dispatches the read-only methods against a Web3 connected to the embedded chain."""

    def __init__(self, w3: Web3, chain_id: int) -> None:
        self.w3 = w3
        self.chain_id = chain_id
        self.methods: dict[str, Callable[[list[Any]], Any]] = {
            "eth_chainId": lambda _: hex(chain_id),
            "net_version": lambda _: str(chain_id),
            "web3_clientVersion": lambda _: f"platone-bal/{__version__}/py-evm",
            "eth_blockNumber": lambda _: hex(self.w3.eth.block_number),
            "eth_getBlockByNumber": self._block,
            "eth_getTransactionReceipt": self._receipt,
            "eth_getLogs": self._logs,
            "eth_call": self._call,
        }

    def handle(self, request: Any) -> dict[str, Any] | None:
        """One JSON-RPC 2.0 request object -> its response (None for a notification)."""
        request_id = request.get("id") if isinstance(request, dict) else None
        try:
            if not isinstance(request, dict) or not isinstance(request.get("method"), str):
                raise RpcError(-32600, "invalid request")
            method = self.methods.get(request["method"])
            if method is None:
                raise RpcError(-32601, f"method {request['method']} is not served (read-only)")
            params = request.get("params", [])
            if not isinstance(params, list):
                raise RpcError(-32602, "params must be an array")
            result = method(params)
        except RpcError as error:
            return _error(request_id, error.code, error.message)
        except Exception as error:  # a read failing must not take the server down
            return _error(request_id, -32000, str(error) or type(error).__name__)
        if isinstance(request, dict) and "id" not in request:
            return None
        return {"jsonrpc": "2.0", "id": request_id, "result": result}

    def _block(self, params: list[Any]) -> Any:
        try:
            number: Any = _block_id(_param(params, 0))
            block = self.w3.eth.get_block(number, bool(_param(params, 1)))
        except BlockNotFound:
            return None
        return encode(dict(block))

    def _receipt(self, params: list[Any]) -> Any:
        try:
            return encode(dict(self.w3.eth.get_transaction_receipt(_param(params, 0))))
        except TransactionNotFound:
            return None

    def _logs(self, params: list[Any]) -> Any:
        query = _param(params, 0, {})
        if not isinstance(query, dict):
            raise RpcError(-32602, "filter must be an object")
        selection: dict[str, Any] = {}
        if query.get("blockHash"):
            selection["blockHash"] = query["blockHash"]
        else:
            latest = self.w3.eth.block_number
            start, end = (_block_id(query.get(key, "latest")) for key in ("fromBlock", "toBlock"))
            start = latest if start == "latest" else start
            end = latest if end == "latest" else end
            assert isinstance(start, int) and isinstance(end, int)
            if end - start > MAX_LOG_RANGE:
                raise RpcError(-32005, f"block range larger than {MAX_LOG_RANGE}")
            selection.update(fromBlock=start, toBlock=end)
        for key in ("address", "topics"):
            if query.get(key) is not None:
                selection[key] = query[key]
        return encode([dict(entry) for entry in self.w3.eth.get_logs(selection)])  # type: ignore[arg-type]

    def _call(self, params: list[Any]) -> Any:
        call = _param(params, 0)
        if not isinstance(call, dict) or not call.get("to"):
            raise RpcError(-32602, "eth_call needs an object with `to`")
        allowed = {key: call[key] for key in ("to", "data", "from", "input") if key in call}
        if "input" in allowed:
            allowed.setdefault("data", allowed.pop("input"))
        return encode(self.w3.eth.call(allowed, _block_id(_param(params, 1, "latest"))))  # type: ignore[arg-type]


def _error(request_id: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


def create_rpc_app(rpc: ReadOnlyRpc) -> Starlette:
    async def endpoint(request: Request) -> Response:
        try:
            body = json_depth.loads(await request.body())
        except ValueError:
            return JSONResponse(_error(None, -32700, "parse error"))
        if isinstance(body, list):
            if not body or len(body) > MAX_BATCH:
                return JSONResponse(_error(None, -32600, f"batch of 1 to {MAX_BATCH} requests"))
            answers = await run_in_threadpool(lambda: [rpc.handle(item) for item in body])
            return JSONResponse([answer for answer in answers if answer is not None])
        answer = await run_in_threadpool(rpc.handle, body)
        return JSONResponse(answer) if answer is not None else Response(status_code=204)

    # Any web page may read this public, read-only view (the dashboard's verifier runs in
    # the browser, on the node's HTTP port: another origin); no cookies are involved.
    cors = Middleware(
        CORSMiddleware, allow_origins=["*"], allow_methods=["POST"], allow_headers=["content-type"]
    )
    return Starlette(routes=[Route("/", endpoint, methods=["POST"])], middleware=[cors])
