#!/usr/bin/env python3
"""Parses each SVG file named on the command line with a real XML parser (expat, through
xml.etree.ElementTree) and prints one JSON document: a list, per file, of its element tree as
{"tag", "attrs", "text", "children"}, tags without their namespace ("ns" says which one). A file
that is not well-formed XML makes the script exit 1 with the parser's message."""
import json
import sys
import xml.etree.ElementTree as ET


def tree(e):
    ns, _, tag = e.tag[1:].partition("}") if e.tag.startswith("{") else ("", "", e.tag)
    attrs = {}
    for k, v in e.attrib.items():
        attrs[k.split("}", 1)[1] if k.startswith("{") else k] = v
    return {
        "tag": tag,
        "ns": ns,
        "attrs": attrs,
        "text": e.text or "",
        "children": [tree(c) for c in e],
    }


out = []
for path in sys.argv[1:]:
    try:
        out.append(tree(ET.parse(path).getroot()))
    except ET.ParseError as err:
        sys.exit(f"{path}: not well-formed XML: {err}")
json.dump(out, sys.stdout)
