"""``client.end_users``: the customers of your product whose usage you meter."""

from __future__ import annotations

from typing import Any, Dict, Optional, Union, cast

from bearlumen._config import NOT_GIVEN, NotGiven
from bearlumen.resources._base import AsyncAPIResource, SyncAPIResource, check_email, given, not_none, path
from bearlumen.types import EndUserListResponse, EndUserResponse, EndUserStatus, Metadata

__all__ = ["AsyncEndUsers", "EndUsers"]


def _create_body(
    external_id: str, email: Optional[str], name: Optional[str], metadata: Optional[Metadata]
) -> Dict[str, Any]:
    check_email(email)
    return not_none(external_id=external_id, email=email, name=name, metadata=metadata)


def _update_body(**fields: Any) -> Dict[str, Any]:
    body = given(**fields)
    check_email(body.get("email"))
    return body


def _list_params(status: Optional[str], limit: Optional[int], offset: Optional[int]) -> Dict[str, Any]:
    return {"status": status, "limit": limit, "offset": offset}


class EndUsers(SyncAPIResource):
    def create(
        self,
        external_id: str,
        email: Optional[str] = None,
        name: Optional[str] = None,
        metadata: Optional[Metadata] = None,
    ) -> EndUserResponse:
        """Create an end user; ``external_id`` is your id for them, unique in your tenant.

        Raises DuplicateCustomerError if the external id is taken, InvalidEmailError for a bad email.
        """
        body = _create_body(external_id, email, name, metadata)
        # retried after an ambiguous failure too: the unique external id prevents a second copy.
        return cast(EndUserResponse, self._http.request("POST", "/v1/end_users", body=body))

    def retrieve(self, end_user_id: str) -> EndUserResponse:
        """Fetch one end user by id (``eu_...``)."""
        return cast(EndUserResponse, self._http.request("GET", path("/v1/end_users/{}", end_user_id)))

    def update(
        self,
        end_user_id: str,
        *,
        external_id: Union[str, NotGiven] = NOT_GIVEN,
        email: Union[str, NotGiven, None] = NOT_GIVEN,
        name: Union[str, NotGiven, None] = NOT_GIVEN,
        metadata: Union[Metadata, NotGiven] = NOT_GIVEN,
    ) -> EndUserResponse:
        """Change the given fields only (``email=None`` clears the email; ``metadata`` replaces it)."""
        body = _update_body(external_id=external_id, email=email, name=name, metadata=metadata)
        return cast(
            EndUserResponse, self._http.request("PATCH", path("/v1/end_users/{}", end_user_id), body=body)
        )

    def list(
        self,
        status: Optional[EndUserStatus] = None,
        limit: Optional[int] = None,
        offset: Optional[int] = None,
    ) -> EndUserListResponse:
        """List end users, oldest first; ``status`` is ``'ACTIVE'`` or ``'DEACTIVATED'``."""
        return cast(
            EndUserListResponse,
            self._http.request("GET", "/v1/end_users", params=_list_params(status, limit, offset)),
        )

    def deactivate(self, end_user_id: str) -> EndUserResponse:
        """Soft-delete an end user (usage history is kept; idempotent)."""
        return cast(
            EndUserResponse, self._http.request("POST", path("/v1/end_users/{}/deactivate", end_user_id))
        )

    def reactivate(self, end_user_id: str) -> EndUserResponse:
        """Restore a deactivated end user."""
        return cast(
            EndUserResponse, self._http.request("POST", path("/v1/end_users/{}/reactivate", end_user_id))
        )


class AsyncEndUsers(AsyncAPIResource):
    async def create(
        self,
        external_id: str,
        email: Optional[str] = None,
        name: Optional[str] = None,
        metadata: Optional[Metadata] = None,
    ) -> EndUserResponse:
        """Create an end user; ``external_id`` is your id for them, unique in your tenant.

        Raises DuplicateCustomerError if the external id is taken, InvalidEmailError for a bad email.
        """
        body = _create_body(external_id, email, name, metadata)
        return cast(EndUserResponse, await self._http.request("POST", "/v1/end_users", body=body))

    async def retrieve(self, end_user_id: str) -> EndUserResponse:
        """Fetch one end user by id (``eu_...``)."""
        return cast(EndUserResponse, await self._http.request("GET", path("/v1/end_users/{}", end_user_id)))

    async def update(
        self,
        end_user_id: str,
        *,
        external_id: Union[str, NotGiven] = NOT_GIVEN,
        email: Union[str, NotGiven, None] = NOT_GIVEN,
        name: Union[str, NotGiven, None] = NOT_GIVEN,
        metadata: Union[Metadata, NotGiven] = NOT_GIVEN,
    ) -> EndUserResponse:
        """Change the given fields only (``email=None`` clears the email; ``metadata`` replaces it)."""
        body = _update_body(external_id=external_id, email=email, name=name, metadata=metadata)
        return cast(
            EndUserResponse,
            await self._http.request("PATCH", path("/v1/end_users/{}", end_user_id), body=body),
        )

    async def list(
        self,
        status: Optional[EndUserStatus] = None,
        limit: Optional[int] = None,
        offset: Optional[int] = None,
    ) -> EndUserListResponse:
        """List end users, oldest first; ``status`` is ``'ACTIVE'`` or ``'DEACTIVATED'``."""
        return cast(
            EndUserListResponse,
            await self._http.request("GET", "/v1/end_users", params=_list_params(status, limit, offset)),
        )

    async def deactivate(self, end_user_id: str) -> EndUserResponse:
        """Soft-delete an end user (usage history is kept; idempotent)."""
        return cast(
            EndUserResponse,
            await self._http.request("POST", path("/v1/end_users/{}/deactivate", end_user_id)),
        )

    async def reactivate(self, end_user_id: str) -> EndUserResponse:
        """Restore a deactivated end user."""
        return cast(
            EndUserResponse,
            await self._http.request("POST", path("/v1/end_users/{}/reactivate", end_user_id)),
        )
