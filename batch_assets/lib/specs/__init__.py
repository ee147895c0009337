from batch_assets.lib.specs.loader import VendorSpecError, load_vendor_spec, load_vendor_specs
from batch_assets.lib.specs.model import (
    CsvFormat,
    FieldType,
    FixedWidthField,
    FixedWidthFormat,
    JsonFormat,
    JsonLinesFormat,
    Priority,
    VendorSpec,
    XmlFormat,
)

__all__ = [
    "CsvFormat",
    "FieldType",
    "FixedWidthField",
    "FixedWidthFormat",
    "JsonFormat",
    "JsonLinesFormat",
    "Priority",
    "VendorSpec",
    "VendorSpecError",
    "XmlFormat",
    "load_vendor_spec",
    "load_vendor_specs",
]
