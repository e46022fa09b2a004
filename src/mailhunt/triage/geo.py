"""Offline IP geolocation and country distances.

IP → country and autonomous system come from geoip2fast's bundled
``geoip2fast-asn-ipv6.dat.gz`` (chosen explicitly: the package's default data
file has no ASN data). Nothing is downloaded; the file ships inside the
installed package. Country centroids for impossible-travel estimates come from
the ``countryinfo`` package's per-country ``latlng``.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from functools import lru_cache

GEOIP_DATA_FILE = "geoip2fast-asn-ipv6.dat.gz"
EARTH_RADIUS_KM = 6371.0


@dataclass(frozen=True)
class IpPlace:
    country: str | None
    asn: str | None


@lru_cache(maxsize=1)
def _geoip():
    from geoip2fast import GeoIP2Fast

    return GeoIP2Fast(geoip2fast_data_file=GEOIP_DATA_FILE, verbose=False)


@lru_cache(maxsize=65536)
def place_of(ip: str | None) -> IpPlace:
    """Country and AS name of a public address; both None for private, reserved or unusable addresses."""
    if not ip:
        return IpPlace(None, None)
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return IpPlace(None, None)
    if not address.is_global:
        return IpPlace(None, None)
    result = _geoip().lookup(str(address))
    country = result.country_code if len(result.country_code or "") == 2 and result.country_code.isalpha() else None
    return IpPlace(country, result.asn_name or None)


@lru_cache(maxsize=512)
def country_centroid(code: str | None) -> tuple[float, float] | None:
    if not code:
        return None
    from countryinfo import CountryInfo, CountryNotFoundError

    try:
        latlng = CountryInfo(code).latlng()
    except (CountryNotFoundError, ValueError):  # an unknown code; a blank one
        return None
    return (float(latlng[0]), float(latlng[1])) if latlng and len(latlng) == 2 else None


def country_distance_km(a: str, b: str) -> float | None:
    """Great-circle distance between two countries' centroids; None when either is unknown."""
    one, two = country_centroid(a), country_centroid(b)
    if one is None or two is None:
        return None
    lat1, lon1, lat2, lon2 = map(math.radians, (*one, *two))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(h))
