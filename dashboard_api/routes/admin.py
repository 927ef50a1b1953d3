"""``/v1/admin/{tenant}/…``: provisioning by operators (an admin token of the tenant).

Create (POST), update (PATCH), retire (DELETE: the row stays with its history,
marked ``retired_at``, its bindings removed) sites, zones, spaces, gateways and
devices; gateway credentials shown once; layout import; the audit log. Read a
site's devices, and a gateway's LoRaWAN bindings in its config's ``sensors`` shape.
Every write is audited in the same transaction.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, ValidationError

from dashboard_api import BadInput, Conflict, ProvisionConflict, ProvisionError, devices, registry
from dashboard_api.bodies import (
    Credentials,
    DeviceIn,
    DevicePatch,
    GatewayIn,
    GatewayPatch,
    SiteIn,
    SitePatch,
    SpaceIn,
    SpacePatch,
    ZoneIn,
    ZonePatch,
    json_value_problem,
)
from dashboard_api.deps import (
    Admin,
    Connection,
    DevicePath,
    GatewayPath,
    SitePath,
    SpacePath,
    TenantPath,
    ZonePath,
)
from dashboard_api.provision import provision
from dashboard_api.schemas import problems
from occupancy.sitefile import parse_site_file

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/admin/{tenant}", tags=["operators"], responses=problems(429, 503))
RESPONSES = problems(401, 403, 404, 409)
WRITE = problems(400, 401, 403, 404, 409, 413)  # and a body: unreadable, or too large


def _set(body: BaseModel, *, drop: tuple[str, ...] = ("id",)) -> dict[str, Any]:
    """The fields the request set, ready for the database (opening hours as a plain dict)."""
    values = body.model_dump(exclude_unset=True, exclude=set(drop))
    if isinstance(values.get("dev_eui"), str):
        values["dev_eui"] = values["dev_eui"].lower()
    return values


Done = dict[str, str]


@router.post("/sites", status_code=201, responses=WRITE, summary="Create a site")
async def create_site(who: Admin, con: Connection, tenant: TenantPath, body: SiteIn) -> Done:
    await registry.create_site(con, who, tenant, body.id, _set(body))
    return {"site": body.id}


@router.patch("/sites/{site}", responses=WRITE, summary="Update a site")
async def update_site(who: Admin, con: Connection,
                      tenant: TenantPath, site: SitePath, body: SitePatch) -> Done:
    await registry.update_site(con, who, tenant, site, _set(body))
    return {"site": site}


@router.delete("/sites/{site}", responses=RESPONSES, summary="Retire a site and its spaces")
async def retire_site(who: Admin, con: Connection, tenant: TenantPath, site: SitePath) -> Done:
    await registry.retire_site(con, who, tenant, site)
    return {"site": site, "retired": "true"}


@router.post("/sites/{site}/zones", status_code=201, responses=WRITE, summary="Create a zone")
async def create_zone(who: Admin, con: Connection, tenant: TenantPath, site: SitePath, body: ZoneIn) -> Done:
    await registry.create_zone(con, who, tenant, site, body.id, _set(body))
    return {"zone": body.id}


@router.patch("/sites/{site}/zones/{zone}", responses=WRITE, summary="Update a zone")
async def update_zone(who: Admin, con: Connection, tenant: TenantPath, site: SitePath, zone: ZonePath,
                      body: ZonePatch) -> Done:
    await registry.update_zone(con, who, tenant, site, zone, _set(body))
    return {"zone": zone}


@router.delete("/sites/{site}/zones/{zone}", responses=RESPONSES, summary="Retire a zone")
async def retire_zone(who: Admin, con: Connection,
                      tenant: TenantPath, site: SitePath, zone: ZonePath) -> Done:
    await registry.retire_zone(con, who, tenant, site, zone)
    return {"zone": zone, "retired": "true"}


@router.post("/sites/{site}/spaces", status_code=201, responses=WRITE, summary="Create a space")
async def create_space(who: Admin, con: Connection,
                       tenant: TenantPath, site: SitePath, body: SpaceIn) -> Done:
    await registry.create_space(con, who, tenant, site, body.id, _set(body))
    return {"space": body.id}


@router.patch("/sites/{site}/spaces/{space}", responses=WRITE, summary="Update a space")
async def update_space(who: Admin, con: Connection, tenant: TenantPath, site: SitePath, space: SpacePath,
                       body: SpacePatch) -> Done:
    await registry.update_space(con, who, tenant, site, space, _set(body))
    return {"space": space}


@router.delete("/sites/{site}/spaces/{space}", responses=RESPONSES, summary="Retire a space")
async def retire_space(who: Admin, con: Connection,
                       tenant: TenantPath, site: SitePath, space: SpacePath) -> Done:
    await registry.retire_space(con, who, tenant, site, space)
    return {"space": space, "retired": "true"}


@router.post("/gateways", status_code=201, responses=WRITE,
             summary="Create a gateway; its credentials are shown once")
async def create_gateway(who: Admin, con: Connection, tenant: TenantPath, body: GatewayIn) -> Credentials:
    secret = await registry.create_gateway(con, who, tenant, body.id, body.name, body.sites or [],
                                           body.spaces or [])
    return Credentials(gateway=body.id, username=f"{tenant}/{body.id}", secret=secret)


@router.patch("/gateways/{gateway}", responses=WRITE, summary="Rename or rebind a gateway")
async def update_gateway(who: Admin, con: Connection,
                         tenant: TenantPath, gateway: GatewayPath, body: GatewayPatch) -> Done:
    await registry.update_gateway(con, who, tenant, gateway, _set(body))
    return {"gateway": gateway}


@router.post("/gateways/{gateway}/credentials", responses=RESPONSES,
             summary="Issue new credentials (the old ones stop working)")
async def rotate(who: Admin, con: Connection, tenant: TenantPath, gateway: GatewayPath) -> Credentials:
    secret = await registry.rotate_credentials(con, who, tenant, gateway)
    return Credentials(gateway=gateway, username=f"{tenant}/{gateway}", secret=secret)


@router.delete("/gateways/{gateway}/credentials", responses=RESPONSES,
               summary="Revoke a gateway's credentials (it stays provisioned, but cannot connect)")
async def revoke(who: Admin, con: Connection, tenant: str, gateway: str) -> Done:
    await registry.revoke_credentials(con, who, tenant, gateway)
    return {"gateway": gateway, "credentials": "revoked"}


@router.delete("/gateways/{gateway}", responses=RESPONSES, summary="Retire a gateway")
async def retire_gateway(who: Admin, con: Connection, tenant: TenantPath, gateway: GatewayPath) -> Done:
    await registry.retire_gateway(con, who, tenant, gateway)
    return {"gateway": gateway, "retired": "true"}


@router.post("/sites/{site}/devices", status_code=201, responses=WRITE, summary="Create a device")
async def create_device(who: Admin, con: Connection,
                        tenant: TenantPath, site: SitePath, body: DeviceIn) -> Done:
    await registry.create_device(con, who, tenant, site, body.id, _set(body))
    return {"device": body.id}


@router.patch("/sites/{site}/devices/{device}", responses=WRITE, summary="Update a device")
async def update_device(who: Admin, con: Connection, tenant: TenantPath, site: SitePath, device: DevicePath,
                        body: DevicePatch) -> Done:
    await registry.update_device(con, who, tenant, site, device, _set(body))
    return {"device": device}


@router.get("/sites/{site}/devices", responses=RESPONSES, summary="The site's live devices")
async def list_devices(_: Admin, con: Connection, tenant: TenantPath, site: SitePath) -> list[dict[str, Any]]:
    """Each with `kind`, `dev_eui`, `model` or `occupied_path` (lorawan), `gateway`, `spaces`."""
    return await devices.device_rows(con, site_id=await registry.site_id(con, tenant, site))


@router.get("/sites/{site}/devices/{device}", responses=RESPONSES, summary="One live device")
async def get_device(_: Admin, con: Connection, tenant: TenantPath, site: SitePath,
                     device: DevicePath) -> dict[str, Any]:
    rows = await devices.device_rows(con, site_id=await registry.site_id(con, tenant, site), device=device)
    return rows[0]


@router.get("/gateways/{gateway}/lorawan", responses=RESPONSES,
            summary="The gateway's LoRaWAN bindings, as its config's `chirpstack.sensors`")
async def gateway_lorawan(_: Admin, con: Connection, tenant: TenantPath,
                          gateway: GatewayPath) -> dict[str, list[dict[str, str]]]:
    """`{"sensors": [{"dev_eui", "model" or "occupied_path", "space": "site/space"}]}`: the live
    lorawan devices watching the spaces bound to the gateway (`curl … > sensors.json`)."""
    gateway_id = await registry.gateway_id(con, tenant, gateway)
    return {"sensors": await devices.gateway_sensors(con, gateway_id=gateway_id)}


@router.delete("/sites/{site}/devices/{device}", responses=RESPONSES, summary="Retire a device")
async def retire_device(who: Admin, con: Connection,
                        tenant: TenantPath, site: SitePath, device: DevicePath) -> Done:
    await registry.retire_device(con, who, tenant, site, device)
    return {"device": device, "retired": "true"}


@router.put("/layout", responses=WRITE,
            summary="Import a site file (the whole tenant, idempotent)")
async def import_site_file(who: Admin, con: Connection, tenant: TenantPath,
                           body: Annotated[dict[str, Any], Body(description="a site file as JSON")]) -> Any:
    """The same as `parkbazaar provision FILE`; the file's tenant must be the path's."""
    problem = json_value_problem(body)
    if problem:
        raise BadInput(f"not a valid site file: {problem}")
    try:
        site_file = parse_site_file(body)
    except ValidationError as exc:
        raise BadInput(f"not a valid site file: {_errors(exc)}") from exc
    if site_file.tenant.id != tenant:
        raise BadInput(f"the site file is of tenant {site_file.tenant.id!r}, not {tenant!r}",
                       loc=("body", "tenant"))
    try:
        report = await provision(con, site_file)
    except ProvisionConflict as exc:
        raise Conflict(str(exc)) from exc
    except ProvisionError as exc:
        if isinstance(exc.__cause__, asyncpg.UniqueViolationError):
            raise Conflict(f"the site file of tenant {tenant!r} conflicts with rows that exist") from exc
        if isinstance(exc.__cause__, asyncpg.PostgresError):  # its text is the database's: not sent
            log.info("layout import of %s refused: %s", tenant, exc)
            raise BadInput(f"the database refused the site file of tenant {tenant!r} "
                           "(a value out of range or conflicting)") from exc
        raise BadInput(str(exc)) from exc
    async with con.transaction():
        await registry.audit(con, who, tenant, "layout.import", tenant,
                             {"changed": report.changed, "sites": [s.id for s in site_file.sites]})
    return {"created": report.created, "changed": report.changed, "report": report.lines()}


@router.put("/sites/{site}/devices/{device}/polygons", responses=WRITE,
            summary="Set a camera's polygons from a PKLot XML, Ultralytics JSON or site file")
async def import_polygons(
    who: Admin, con: Connection, tenant: TenantPath, site: SitePath, device: DevicePath,
    body: Annotated[str, Body(media_type="text/plain", description="the layout file's text")],
    format: Annotated[Literal["pklot", "ultralytics", "site"], Query()] = "pklot",
    prefix: Annotated[str, Query(pattern=r"^[A-Za-z0-9_.-]{0,32}$",
                                 description="space id = prefix + number")] = "",
    width: Annotated[int, Query(ge=0, le=6, description="zero-pad the number to this width")] = 0,
) -> Done:
    """Layout space `n` becomes space `{prefix}{n:0{width}}` of the site (e.g. `A-` and 3 → `A-001`);
    a site file (YAML or JSON) gives the polygons of its camera of the same id. A new layout version."""
    polygons = _layout_polygons(body, format, prefix, width, device)
    version = await registry.update_device(con, who, tenant, site, device, {"spaces": polygons},
                                           layout_source=format)
    return {"device": device, "spaces": str(len(polygons)), "version": str(version)}


def _errors(exc: ValidationError) -> str:
    """A site file's validation errors as text: where and what, never the input echoed."""
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'file'}: {e['msg']}" for e in exc.errors()[:20])


def _layout_polygons(text: str, fmt: str, prefix: str, width: int,
                     device: str) -> dict[str, list[list[float]]]:
    import json

    import yaml

    from occupancy.vision.errors import LayoutError
    from occupancy.vision.layout import layout_from_bounding_boxes, layout_from_site_device, parse_pklot_xml

    try:
        layout = (parse_pklot_xml(text).layout if fmt == "pklot"
                  else layout_from_bounding_boxes(json.loads(text)) if fmt == "ultralytics"
                  else layout_from_site_device(_site_yaml(text), device))
    except (LayoutError, ValueError, yaml.YAMLError) as exc:
        raise BadInput(f"not a {fmt} layout: {exc}") from exc
    out = {}
    for space in layout.spaces:
        number = space.id.isascii() and space.id.isdigit()  # "²".isdigit() is true, int("²") fails
        key = f"{prefix}{int(space.id):0{width}d}" if number else f"{prefix}{space.id}"
        out[key] = [[x, y] for x, y in space.polygon]
    problem = json_value_problem(out)
    if problem:
        raise BadInput(f"not a {fmt} layout: {problem}")
    return out


def _site_yaml(text: str) -> Any:
    """A site file's YAML (or JSON) text, refusing aliases: ``*a`` repeated can make a small
    text expand to more polygon points than memory holds."""
    import yaml

    class NoAliases(yaml.SafeLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                raise yaml.YAMLError("YAML aliases (*name) are not accepted in a layout")
            return super().compose_node(parent, index)

    return yaml.load(text, Loader=NoAliases)  # a SafeLoader


@router.get("/audit", responses=RESPONSES, summary="The audit log, newest first")
async def audit_log(_: Admin, con: Connection, tenant: TenantPath,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
    """Who wrote what and when (token id, action, target, the values written)."""
    return await registry.audit_rows(con, tenant, limit)
