"""The catalog's operations: every IMGAPI rule about manifests, state, visibility, ACLs and channels.

Transport-free: callers pass plain values (:class:`Caller`, :class:`View`) and get plain values
back; failures are :class:`~imgapi_common.errors.ImgapiError`. The rules about one image live on
:class:`~catalog_service.domain.image.Image`; the operations are grouped by concern in
:mod:`catalog_service.handlers`; each mutation runs in the unit of work
(:mod:`catalog_service.adapters.db.unit_of_work`): one transaction that re-reads the record, applies the rule,
writes conditionally on the revision it read (retrying on a lost race) and appends to the change
feed; all SQL is in :mod:`catalog_service.adapters.db.repository`.
"""

from __future__ import annotations

from catalog_service.adapters.db.repository import Change
from catalog_service.domain.calls import Caller, Rendered, UploadPlan, View
from catalog_service.handlers.acl_channels import AclChannelHandlers
from catalog_service.handlers.changes import ChangeFeedHandlers
from catalog_service.handlers.files import FileHandlers
from catalog_service.handlers.lifecycle import LifecycleHandlers
from catalog_service.handlers.reads import ReadHandlers

__all__ = ["Caller", "CatalogService", "Change", "Rendered", "UploadPlan", "View"]


class CatalogService(ReadHandlers, LifecycleHandlers, AclChannelHandlers, FileHandlers, ChangeFeedHandlers):
    """The catalog: every handler over one repository, unit of work and configuration."""
