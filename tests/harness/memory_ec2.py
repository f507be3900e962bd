"""bench.pipeline's in-memory EC2 with the EC2 behaviours the retry tests need.

- ClientToken: a token seen before answers with the ENI it first made, even
  after that ENI was deleted (EC2's idempotency), and a token sent again with
  other parameters answers IdempotentParameterMismatch.
- `refuse[action] = code`: that action answers the AWS error `code`
  (`refuse_subnets` limits a CreateNetworkInterface refusal to those subnets).
- `sticky_delete_on_termination = False`: a DeleteOnTermination change is
  accepted and ignored, as plain moto does.
- DeleteNetworkInterface, and AttachNetworkInterface of a deleted ENI answering
  InvalidNetworkInterfaceID.NotFound.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

from bench.pipeline import MemoryEC2

HTTP_BAD_REQUEST = 400


def client_error(action: str, code: str, message: str = "refused by the test") -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": HTTP_BAD_REQUEST},
        },
        action,
    )


class RulesMemoryEC2(MemoryEC2):
    def __init__(self, instances: Sequence[str]) -> None:
        super().__init__(instances)
        self.refuse: dict[str, str] = {}
        self.refuse_subnets: set[str] = set()
        self.sticky_delete_on_termination = True
        self.tokens: dict[str, tuple[str, dict[str, Any]]] = {}  # token -> (params, response)

    def _refused(self, action: str, params: dict[str, Any]) -> None:
        code = self.refuse.get(action)
        if code is None:
            return
        subnet = params.get("SubnetId")
        if (
            action == "CreateNetworkInterface"
            and self.refuse_subnets
            and subnet not in self.refuse_subnets
        ):
            return
        self._count(action)  # refused calls count: EC2 received them
        raise client_error(action, code)

    async def create_network_interface(self, **params: Any) -> dict[str, Any]:
        self._refused("CreateNetworkInterface", params)
        token = params.get("ClientToken")
        fingerprint = json.dumps(
            {k: v for k, v in params.items() if k != "ClientToken"}, sort_keys=True
        )
        if token is not None and token in self.tokens:
            self._count("CreateNetworkInterface")
            seen, response = self.tokens[token]
            if seen != fingerprint:
                raise client_error("CreateNetworkInterface", "IdempotentParameterMismatch")
            return copy.deepcopy(response)
        response = await super().create_network_interface(**params)
        if token is not None:  # the answer as it was at creation, as EC2 replays it
            self.tokens[token] = (fingerprint, copy.deepcopy(response))
        return response

    async def attach_network_interface(self, **params: Any) -> dict[str, Any]:
        self._refused("AttachNetworkInterface", params)
        if params["NetworkInterfaceId"] not in self.enis:
            self._count("AttachNetworkInterface")
            raise client_error("AttachNetworkInterface", "InvalidNetworkInterfaceID.NotFound")
        return await super().attach_network_interface(**params)

    async def modify_network_interface_attribute(self, **params: Any) -> dict[str, Any]:
        self._refused("ModifyNetworkInterfaceAttribute", params)
        if "Attachment" in params and not self.sticky_delete_on_termination:
            self._count("ModifyNetworkInterfaceAttribute")
            return {}
        if "Groups" in params:
            self._count("ModifyNetworkInterfaceAttribute")
            self.enis[params["NetworkInterfaceId"]]["Groups"] = [
                {"GroupId": g} for g in params["Groups"]
            ]
            return {}
        return await super().modify_network_interface_attribute(**params)

    async def delete_network_interface(self, **params: Any) -> dict[str, Any]:
        self._count("DeleteNetworkInterface")
        eni = self.enis.pop(params["NetworkInterfaceId"], None)
        if eni is None:
            raise client_error("DeleteNetworkInterface", "InvalidNetworkInterfaceID.NotFound")
        for listed in self._by_uid.values():
            if eni in listed:
                listed.remove(eni)
        return {}
