"""The PDF of one admission: the processed JPEGs embedded byte for byte, PDF/A-2b.

No database here: ``build_pdf_bytes(pages, meta)`` takes the page images and the record's
metadata and returns the file. What it writes:

- one page per image, an image XObject with ``/Filter /DCTDecode`` whose stream is exactly the
  stored JPEG (never decoded or re-encoded), drawn at its actual size (``points = pixels /
  dpi * 72``) in the middle of a page the size of the paper it came from: the smallest of the
  papers medical records are written on (A5, B5, 16K, A4, in either orientation) that holds
  the image, so a page cropped to its ink prints at actual size on the paper it came from;
  an image larger than A4 keeps its own size (``paper_for``);
- bookmarks (outline) with one entry per run of pages of the same page type, in record order,
  when any page has a type (the page index, M1);
- metadata twice, kept equivalent: the document information dictionary and an XMP packet. The
  XMP carries ``pdfaid:part=2`` / ``pdfaid:conformance=B`` and the record's identity in a small
  ``bingan:`` schema described by a PDF/A extension schema (ISO 19005-2, 6.6.2.3);
- an sRGB output intent (``GTS_PDFA1``) with an ICC profile made by LittleCMS through Pillow;
- PDF version 1.7 and a file identifier (``/ID``) derived from the content.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
from dataclasses import dataclass
from xml.sax.saxutils import escape

import pikepdf
from pikepdf import Array, Dictionary, Name, OutlineItem, String
from PIL import Image, ImageCms

UNTYPED = "未分类"
NS = "http://bingan.invalid/ns/record/1.0/"  # .invalid: reserved, never resolves (RFC 2606)
MIN_DPI, MAX_DPI = 50.0, 2400.0


class PdfBuildError(ValueError):
    """A page cannot be put into the PDF as it is (not a JPEG, CMYK, truncated ...)."""


@dataclass(frozen=True)
class PdfPage:
    """One page to embed: the processed JPEG and what the record knows about it."""

    jpeg: bytes
    dpi: float | None = None
    page_type: str | None = None
    label: str = ""  # how errors name the page, e.g. "第 3 页"


@dataclass(frozen=True)
class PdfMeta:
    """The record's identity written into the document metadata."""

    mrn: str
    admission_no: str
    visit_no: int
    patient_name: str
    discharge_date: dt.date | None
    hospital: str
    producer: str
    created: dt.datetime  # aware, in the hospital's time zone (written with its offset)
    version: int = 1


@dataclass(frozen=True)
class JpegInfo:
    width: int
    height: int
    components: int  # 1 gray, 3 RGB
    dpi: float | None  # from the JFIF/EXIF header, if it states one in inches or cm


def jpeg_info(data: bytes, label: str = "") -> JpegInfo:
    """Check that ``data`` is a complete baseline or progressive JPEG in gray or RGB, and
    read its size. The scan is decoded at 1/8 scale (cheap) to find truncated files."""
    where = f"{label}：" if label else ""
    if data[:3] != b"\xff\xd8\xff":
        raise PdfBuildError(f"{where}不是 JPEG 文件，PDF 只收处理后的 JPEG（不重新编码）")
    try:
        img = Image.open(io.BytesIO(data))
        if img.format != "JPEG":
            raise PdfBuildError(f"{where}不是 JPEG 文件（{img.format}）")
        mode, (width, height) = img.mode, img.size
        raw_dpi = img.info.get("dpi")
        img.draft(img.mode, (max(1, width // 8), max(1, height // 8)))
        img.load()
    except PdfBuildError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise PdfBuildError(f"{where}JPEG 已损坏或被截断（{exc}）") from exc
    if mode not in ("L", "RGB"):
        raise PdfBuildError(f"{where}色彩模式 {mode} 不受支持（只接受灰度或 RGB 的 JPEG）")
    dpi = None
    if raw_dpi and raw_dpi[0]:
        try:
            dpi = float(raw_dpi[0])
        except (TypeError, ValueError):
            dpi = None
    return JpegInfo(width, height, 1 if mode == "L" else 3, dpi)


def effective_dpi(page_dpi: float | None, info: JpegInfo, default_dpi: float) -> float:
    """The DPI that sizes the page: the page's own, else the JPEG header's, else the default.
    A value outside 50..2400 is taken for a missing one (JFIF often says 1:1 or 72)."""
    for cand in (page_dpi, info.dpi):
        if cand is not None and MIN_DPI <= cand <= MAX_DPI:
            return float(cand)
    return float(default_dpi)


def page_size_points(width_px: int, height_px: int, dpi: float) -> tuple[float, float]:
    return round(width_px * 72.0 / dpi, 4), round(height_px * 72.0 / dpi, 4)


MM = 72.0 / 25.4
# Papers of Chinese medical records, smallest first (portrait width x height, millimetres):
# GB/T 148 A5, A4 and B5 (176 x 250), and 16K (大16开 195 x 270 is the common one).
PAPERS: list[tuple[str, float, float]] = [
    ("A5", 148.0, 210.0), ("B5", 176.0, 250.0), ("16K", 195.0, 270.0), ("A4", 210.0, 297.0),
]
PAPER_SLACK_MM = 2.0  # a scan of a full sheet may come out a millimetre or two larger


def paper_for(width_pt: float, height_pt: float) -> tuple[str | None, float, float]:
    """The paper (name, width, height in points, in the image's orientation) that holds an
    image of this size; (None, width, height) when it is larger than every paper."""
    landscape = width_pt > height_pt
    short, long_ = sorted((width_pt / MM, height_pt / MM))
    for name, pw, ph in PAPERS:
        if short <= pw + PAPER_SLACK_MM and long_ <= ph + PAPER_SLACK_MM:
            w, h = max(pw, short), max(ph, long_)
            w, h = round(w * MM, 4), round(h * MM, 4)
            return (name, h, w) if landscape else (name, w, h)
    return None, width_pt, height_pt


def bookmark_runs(types: list[str | None]) -> list[tuple[str, int, int]]:
    """(title, first index, last index) for each run of equal page types, in order; empty
    when no page has a type (no page index yet)."""
    if not any(types):
        return []
    runs: list[tuple[str, int, int]] = []
    for i, t in enumerate(types):
        title = t or UNTYPED
        if runs and runs[-1][0] == title and runs[-1][2] == i - 1:
            runs[-1] = (title, runs[-1][1], i)
        else:
            runs.append((title, i, i))
    return runs


@functools.lru_cache(maxsize=1)
def srgb_profile() -> bytes:
    """An sRGB display profile (ICC v4, device class ``mntr``) from LittleCMS."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _pdf_date(t: dt.datetime) -> str:
    """A PDF date with the offset ``t`` carries (``PdfMeta.created`` is in hospital time)."""
    minutes = int((t.utcoffset() or dt.timedelta()).total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    return t.strftime("D:%Y%m%d%H%M%S") + f"{sign}{hours:02d}'{mins:02d}'"


def _xmp_date(t: dt.datetime) -> str:
    return t.replace(microsecond=0).isoformat()


def describe(meta: PdfMeta, page_count: int) -> dict[str, str]:
    """The human-readable metadata strings (docinfo and XMP share them)."""
    discharge = meta.discharge_date.isoformat() if meta.discharge_date else "未出院"
    return {
        "title": f"{meta.patient_name} 病案号{meta.mrn} 住院号{meta.admission_no}",
        "subject": (f"住院病案：病案号 {meta.mrn}；住院号 {meta.admission_no}；"
                    f"住院次数 {meta.visit_no}；出院日期 {discharge}；共 {page_count} 页"),
        "keywords": (f"病案号:{meta.mrn}; 住院号:{meta.admission_no}; 住院次数:{meta.visit_no}; "
                     f"出院日期:{discharge}; 页数:{page_count}"),
        "creator": f"bingan 病案数字化管理平台（{meta.hospital}）",
        "author": meta.hospital,
    }


_EXT_PROPS = [
    ("mrn", "Text", "Medical record number (病案号)"),
    ("admissionNo", "Text", "Admission number (住院号)"),
    ("visitNo", "Integer", "Visit number (住院次数)"),
    ("dischargeDate", "Date", "Discharge date (出院日期)"),
    ("pageCount", "Integer", "Number of pages"),
    ("documentVersion", "Integer", "Version of this admission's PDF"),
]


def xmp_packet(meta: PdfMeta, page_count: int) -> bytes:
    """The XMP metadata: Dublin Core, XMP basic, Adobe PDF, PDF/A id, and the record schema
    with its PDF/A extension schema description."""
    d = describe(meta, page_count)
    created = _xmp_date(meta.created)
    props = []
    for name, vtype, desc in _EXT_PROPS:
        props.append(
            "<rdf:li rdf:parseType=\"Resource\">"
            f"<pdfaProperty:name>{name}</pdfaProperty:name>"
            f"<pdfaProperty:valueType>{vtype}</pdfaProperty:valueType>"
            "<pdfaProperty:category>external</pdfaProperty:category>"
            f"<pdfaProperty:description>{escape(desc)}</pdfaProperty:description>"
            "</rdf:li>")
    record = [
        f"<bingan:mrn>{escape(meta.mrn)}</bingan:mrn>",
        f"<bingan:admissionNo>{escape(meta.admission_no)}</bingan:admissionNo>",
        f"<bingan:visitNo>{int(meta.visit_no)}</bingan:visitNo>",
        f"<bingan:pageCount>{int(page_count)}</bingan:pageCount>",
        f"<bingan:documentVersion>{int(meta.version)}</bingan:documentVersion>",
    ]
    if meta.discharge_date:
        record.append(f"<bingan:dischargeDate>{meta.discharge_date.isoformat()}"
                      "</bingan:dischargeDate>")
    xml = f"""<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/">
<pdfaid:part>2</pdfaid:part>
<pdfaid:conformance>B</pdfaid:conformance>
</rdf:Description>
<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">
<dc:format>application/pdf</dc:format>
<dc:title><rdf:Alt><rdf:li xml:lang="x-default">{escape(d["title"])}</rdf:li></rdf:Alt></dc:title>
<dc:creator><rdf:Seq><rdf:li>{escape(d["author"])}</rdf:li></rdf:Seq></dc:creator>
<dc:description><rdf:Alt><rdf:li xml:lang="x-default">{escape(d["subject"])}</rdf:li></rdf:Alt></dc:description>
<dc:identifier>{escape(meta.admission_no)}</dc:identifier>
</rdf:Description>
<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/">
<xmp:CreateDate>{created}</xmp:CreateDate>
<xmp:ModifyDate>{created}</xmp:ModifyDate>
<xmp:MetadataDate>{created}</xmp:MetadataDate>
<xmp:CreatorTool>{escape(d["creator"])}</xmp:CreatorTool>
</rdf:Description>
<rdf:Description rdf:about="" xmlns:pdf="http://ns.adobe.com/pdf/1.3/">
<pdf:Producer>{escape(meta.producer)}</pdf:Producer>
<pdf:Keywords>{escape(d["keywords"])}</pdf:Keywords>
</rdf:Description>
<rdf:Description rdf:about="" xmlns:bingan="{NS}">
{"".join(record)}
</rdf:Description>
<rdf:Description rdf:about="" xmlns:pdfaExtension="http://www.aiim.org/pdfa/ns/extension/" xmlns:pdfaSchema="http://www.aiim.org/pdfa/ns/schema#" xmlns:pdfaProperty="http://www.aiim.org/pdfa/ns/property#">
<pdfaExtension:schemas><rdf:Bag><rdf:li rdf:parseType="Resource">
<pdfaSchema:schema>bingan medical record (病案) identity</pdfaSchema:schema>
<pdfaSchema:namespaceURI>{NS}</pdfaSchema:namespaceURI>
<pdfaSchema:prefix>bingan</pdfaSchema:prefix>
<pdfaSchema:property><rdf:Seq>{"".join(props)}</rdf:Seq></pdfaSchema:property>
</rdf:li></rdf:Bag></pdfaExtension:schemas>
</rdf:Description>
</rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>"""
    return xml.encode("utf-8")


def build_pdf_bytes(pages: list[PdfPage], meta: PdfMeta, default_dpi: float = 300.0) -> bytes:
    """The PDF/A-2b file of one admission (see the module docstring)."""
    if not pages:
        raise PdfBuildError("没有页面，不能生成 PDF")
    pdf = pikepdf.new()
    for i, p in enumerate(pages):
        label = p.label or f"第 {i + 1} 页"
        info = jpeg_info(p.jpeg, label)
        dpi = effective_dpi(p.dpi, info, default_dpi)
        w, h = page_size_points(info.width, info.height, dpi)
        _paper, pw, ph = paper_for(w, h)
        x, y = round((pw - w) / 2, 4), round((ph - h) / 2, 4)
        img = pikepdf.Stream(pdf, p.jpeg)  # the stored bytes, as they are
        img.Type, img.Subtype = Name.XObject, Name.Image
        img.Width, img.Height, img.BitsPerComponent = info.width, info.height, 8
        img.ColorSpace = Name.DeviceGray if info.components == 1 else Name.DeviceRGB
        img.Filter = Name.DCTDecode
        page = pdf.add_blank_page(page_size=(pw, ph))
        page.Resources = Dictionary(XObject=Dictionary(Im0=img))
        page.Contents = pdf.make_stream(f"q {w:g} 0 0 {h:g} {x:g} {y:g} cm /Im0 Do Q".encode())

    runs = bookmark_runs([p.page_type for p in pages])
    if runs:
        with pdf.open_outline() as outline:
            for title, first, _last in runs:
                outline.root.append(OutlineItem(title, first))
        pdf.Root.PageMode = Name.UseOutlines

    d = describe(meta, len(pages))
    created = _pdf_date(meta.created)
    pdf.trailer.Info = pdf.make_indirect(Dictionary(
        Title=String(d["title"]), Author=String(d["author"]), Subject=String(d["subject"]),
        Keywords=String(d["keywords"]), Creator=String(d["creator"]),
        Producer=String(meta.producer), CreationDate=String(created), ModDate=String(created),
        MRN=String(meta.mrn), AdmissionNo=String(meta.admission_no),
        VisitNo=String(str(meta.visit_no)), PageCount=String(str(len(pages))),
        DischargeDate=String(meta.discharge_date.isoformat() if meta.discharge_date else ""),
    ))
    xmp = pikepdf.Stream(pdf, xmp_packet(meta, len(pages)))
    xmp.Type, xmp.Subtype = Name.Metadata, Name.XML
    pdf.Root.Metadata = pdf.make_indirect(xmp)

    icc = pikepdf.Stream(pdf, srgb_profile())
    icc.N = 3
    pdf.Root.OutputIntents = Array([Dictionary(
        Type=Name.OutputIntent, S=Name.GTS_PDFA1,
        OutputConditionIdentifier=String("sRGB IEC61966-2.1"),
        Info=String("sRGB IEC61966-2.1"), RegistryName=String("http://www.color.org"),
        DestOutputProfile=pdf.make_indirect(icc),
    )])
    pdf.Root.Lang = String("zh-CN")

    out = io.BytesIO()
    pdf.save(out, force_version="1.7", deterministic_id=True,
             compress_streams=True, object_stream_mode=pikepdf.ObjectStreamMode.disable)
    return out.getvalue()


__all__ = ["PdfBuildError", "PdfMeta", "PdfPage", "bookmark_runs", "build_pdf_bytes",
           "effective_dpi", "jpeg_info", "page_size_points", "paper_for", "srgb_profile",
           "xmp_packet"]
