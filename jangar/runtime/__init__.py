"""jangar.runtime: an asyncio controller runtime with client-go / controller-runtime semantics.

Generic on purpose: nothing here knows about agents (an import-linter contract enforces it).
The everyday surface is re-exported here; see docs/runtime.md for the design.
"""

from jangar.runtime.builder import Builder
from jangar.runtime.cache import (
    Cache,
    CacheOptions,
    CacheReader,
    CacheScope,
    InformerNotRegistered,
    ResourceCacheOptions,
)
from jangar.runtime.client import Client, ObjectList, PatchType, PropagationPolicy, RetryPolicy, WatchEvent
from jangar.runtime.clock import MONOTONIC, Clock, MonotonicClock
from jangar.runtime.controller import Controller, ControllerOptions
from jangar.runtime.controllerutil import (
    AlreadyOwnedError,
    add_finalizer,
    controller_uid,
    ensure_finalizer,
    has_finalizer,
    is_being_deleted,
    is_controlled_by,
    is_controlled_by_uid,
    owner_reference,
    remove_finalizer,
    remove_finalizer_and_patch,
    set_controller_reference,
)
from jangar.runtime.errors import (
    AlreadyExistsError,
    ApiError,
    ConflictError,
    GoneError,
    InvalidError,
    NotFoundError,
    is_conflict,
    is_not_found,
)
from jangar.runtime.events import EventRecorder, Recorder
from jangar.runtime.handler import request_for_object, requests_for_owner
from jangar.runtime.informer import EventHandler, FuncHandler, SharedInformer, strip_managed_fields
from jangar.runtime.leaderelection import LeaderElectionOptions, LeaderElector, LeaderLost
from jangar.runtime.log import bind_reconcile_context, configure_logging
from jangar.runtime.manager import FuncRunnable, Manager, ManagerOptions, Runnable, RunnableFailed, Supervised
from jangar.runtime.metrics import RuntimeMetrics
from jangar.runtime.predicate import (
    And,
    AnnotationsChanged,
    GenerationChanged,
    LabelsChanged,
    Not,
    ObjectFilter,
    Or,
    Predicate,
    ResourceVersionChanged,
    label_selector,
)
from jangar.runtime.reconcile import ReconcileFunc, Reconciler, Request, Result, TerminalError
from jangar.runtime.reflector import ReflectorOptions
from jangar.runtime.resources import JsonObject, ResourceRef, make_key, object_key, split_key
from jangar.runtime.workqueue import LOW_PRIORITY, QueueShutDown, WorkQueue

__all__ = [
    "LOW_PRIORITY",
    "MONOTONIC",
    "AlreadyExistsError",
    "AlreadyOwnedError",
    "And",
    "AnnotationsChanged",
    "ApiError",
    "Builder",
    "Cache",
    "CacheOptions",
    "CacheReader",
    "CacheScope",
    "Client",
    "Clock",
    "ConflictError",
    "Controller",
    "ControllerOptions",
    "EventHandler",
    "EventRecorder",
    "FuncHandler",
    "FuncRunnable",
    "GenerationChanged",
    "GoneError",
    "InformerNotRegistered",
    "InvalidError",
    "JsonObject",
    "LabelsChanged",
    "LeaderElectionOptions",
    "LeaderElector",
    "LeaderLost",
    "Manager",
    "ManagerOptions",
    "MonotonicClock",
    "Not",
    "NotFoundError",
    "ObjectFilter",
    "ObjectList",
    "Or",
    "PatchType",
    "Predicate",
    "PropagationPolicy",
    "QueueShutDown",
    "ReconcileFunc",
    "Reconciler",
    "Recorder",
    "ReflectorOptions",
    "Request",
    "ResourceCacheOptions",
    "ResourceRef",
    "ResourceVersionChanged",
    "Result",
    "RetryPolicy",
    "Runnable",
    "RunnableFailed",
    "RuntimeMetrics",
    "SharedInformer",
    "Supervised",
    "TerminalError",
    "WatchEvent",
    "WorkQueue",
    "add_finalizer",
    "bind_reconcile_context",
    "configure_logging",
    "controller_uid",
    "ensure_finalizer",
    "has_finalizer",
    "is_being_deleted",
    "is_conflict",
    "is_controlled_by",
    "is_controlled_by_uid",
    "is_not_found",
    "label_selector",
    "make_key",
    "object_key",
    "owner_reference",
    "remove_finalizer",
    "remove_finalizer_and_patch",
    "request_for_object",
    "requests_for_owner",
    "set_controller_reference",
    "split_key",
    "strip_managed_fields",
]
