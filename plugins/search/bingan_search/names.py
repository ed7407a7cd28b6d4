"""Pinyin keys of patient names, with every reading of every heteronym character.

Core stores one reading per patient (``name_pinyin``, ``name_initials``), which is what
pypinyin picks for the whole name. A surname is often read differently from the character's
common reading (单 Shàn, 曾 Zēng, 解 Xiè, 区 Ōu, 查 Zhā, 仇 Qiú, 朴 Piáo, 乐 Yuè ...), and a clerk
types what the patient says. So for each name we store keys for every reading of its surname:
for a surname in the dictionary below, its surname readings plus the character's usual
reading (单 gives shan and dan, not the chan of 单于); for any other surname, every reading
pypinyin knows (``heteronym=True``). Each reading gives full pinyin (``shanwei``), initials
(``sw``) and surname in full + given-name initials (``shanw``); pypinyin's reading of the whole
name (what core stores) is kept too. A Latin query matches a name when it is a prefix of one
of its keys.

Given names have heteronyms too (陈长林 is Chén Chánglín to most people, though pypinyin reads
Zhǎnglín): every reading pypinyin knows of every given-name character is a key as well. Each
reading of a name has a rank, the number of characters read otherwise than pypinyin reads them
in context (the surname dictionary's first reading counts as the common one), so a result
list can put the common reading first (``key_ranks``). The combinations are bounded
(``MAX_READINGS``, fewest unusual readings first).
"""

from __future__ import annotations

import functools
import itertools
import re

from pypinyin import Style, lazy_pinyin, pinyin

# Surname readings (百家姓 usage). Single characters: readings used as a surname, first the
# usual one. Compound surnames are matched before single ones.
SURNAME_READINGS: dict[str, tuple[str, ...]] = {
    "单": ("shan",), "曾": ("zeng",), "解": ("xie",), "区": ("ou",), "查": ("zha",),
    "仇": ("qiu",), "朴": ("piao",), "乐": ("yue", "le"), "盖": ("ge", "gai"), "覃": ("qin",),
    "缪": ("miao",), "繁": ("po",), "员": ("yun",), "句": ("gou",), "召": ("shao",),
    "宓": ("fu",), "秘": ("bi",), "种": ("chong",), "翟": ("zhai",), "那": ("na",),
    "折": ("she",), "隗": ("wei",), "华": ("hua",), "任": ("ren",), "过": ("guo",),
    "纪": ("ji",), "燕": ("yan",), "尉": ("wei", "yu"), "冼": ("xian",), "洗": ("xian",),
    "黑": ("he",), "藏": ("zang",), "长": ("chang",), "薄": ("bo",),
    "沈": ("shen",), "貟": ("yun",), "阚": ("kan",), "卜": ("bu",), "柏": ("bai",),
    "蕃": ("pi",), "相": ("xiang",), "车": ("che",), "谌": ("chen",), "都": ("du",),
    "重": ("chong",), "侯": ("hou",), "厍": ("she",), "莘": ("shen",), "能": ("nai",),
    "万": ("wan",), "占": ("zhan",), "苑": ("yuan",), "粘": ("nian",), "曲": ("qu",),
    "陆": ("lu",), "石": ("shi",), "钟": ("zhong",), "行": ("xing",), "艾": ("ai",),
    "叶": ("ye",), "贾": ("jia",), "庞": ("pang",),
}
COMPOUND_SURNAMES: dict[str, tuple[str, ...]] = {
    "欧阳": ("ou", "yang"), "司马": ("si", "ma"), "诸葛": ("zhu", "ge"), "上官": ("shang", "guan"),
    "东方": ("dong", "fang"), "皇甫": ("huang", "fu"), "尉迟": ("yu", "chi"),
    "公孙": ("gong", "sun"), "慕容": ("mu", "rong"), "令狐": ("ling", "hu"),
    "长孙": ("zhang", "sun"), "宇文": ("yu", "wen"), "司徒": ("si", "tu"),
    "夏侯": ("xia", "hou"), "万俟": ("mo", "qi"), "澹台": ("tan", "tai"),
    "轩辕": ("xuan", "yuan"), "西门": ("xi", "men"), "南宫": ("nan", "gong"),
    "端木": ("duan", "mu"), "独孤": ("du", "gu"), "呼延": ("hu", "yan"), "闻人": ("wen", "ren"),
    "东郭": ("dong", "guo"), "百里": ("bai", "li"), "钟离": ("zhong", "li"),
    "拓跋": ("tuo", "ba"), "司空": ("si", "kong"), "单于": ("chan", "yu"),
    "赫连": ("he", "lian"), "申屠": ("shen", "tu"), "太史": ("tai", "shi"),
}

MAX_READINGS = 48  # readings of one name kept as keys (fewest unusual characters first)
RANK_MAX = 9  # ranks stored (search_name_key.rank) are capped here

_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_NOT_KEY = re.compile(r"[^a-z]")
_WORD = re.compile(r"[^A-Za-zÜü]+")


def has_han(text: str) -> bool:
    """True when ``text`` holds a Chinese character (then it is a name, not a pinyin key)."""
    return bool(_HAN.search(text))


def normalize_key(text: str) -> str:
    """A typed pinyin query as stored keys are spelled: lower case a-z, ü as v, no spaces."""
    return _NOT_KEY.sub("", text.lower().replace("ü", "v").replace("u:", "v"))


def _syllables(text: str) -> list[str]:
    """Default reading of ``text``, one entry per Han character; other letters kept as words."""
    out = lazy_pinyin(text, style=Style.NORMAL, errors=lambda chars: _WORD.split(chars))
    return [k for k in (normalize_key(s) for s in out) if k]


def _surname_readings(name: str) -> tuple[int, list[list[str]]]:
    """(length of the surname, its readings as syllable lists)."""
    if name[:2] in COMPOUND_SURNAMES:
        return 2, [list(COMPOUND_SURNAMES[name[:2]])]
    first = name[:1]
    if not has_han(first):
        return 0, [[]]
    readings: list[list[str]] = []
    known = SURNAME_READINGS.get(first)
    # a surname in the dictionary: its surname readings plus the character's usual reading
    # (what people who do not know say); otherwise every reading pypinyin knows
    candidates = [*known, *lazy_pinyin(first)] if known else \
        pinyin(first, style=Style.NORMAL, heteronym=True)[0]
    for r in candidates:
        r = normalize_key(r)
        if r and [r] not in readings:
            readings.append([r])
    return 1, readings


def _char_readings(given: str) -> list[list[str]]:
    """Per Han character of ``given``: its reading in context first, then every other one."""
    context = _syllables(given)
    chars = [c for c in given if has_han(c)]
    if len(context) != len(given) or len(chars) != len(given):
        return [[s] for s in context]  # Latin letters or digits inside: no heteronym expansion
    out = []
    for ch, common in zip(given, context):
        alts = [common]
        for r in pinyin(ch, style=Style.NORMAL, heteronym=True)[0]:
            r = normalize_key(r)
            if r and r not in alts:
                alts.append(r)
        out.append(alts)
    return out


def _readings(name: str) -> list[tuple[int, list[str], list[str]]]:
    """(rank, surname syllables, given-name syllables) of every reading, rank ascending."""
    n, surnames = _surname_readings(name)
    given = _char_readings(name[n:])
    out: list[tuple[int, list[str], list[str]]] = []
    for si, surname in enumerate(surnames):
        # the surname dictionary's first reading (or pypinyin's common one) ranks as common
        s_rank = 0 if si == 0 else 1
        for choice in itertools.product(*[range(len(a)) for a in given]):
            rank = s_rank + sum(1 for c in choice if c)
            out.append((rank, surname, [given[i][c] for i, c in enumerate(choice)]))
    out.sort(key=lambda r: r[0])
    return out[:MAX_READINGS]


@functools.lru_cache(maxsize=65536)
def key_ranks(name: str) -> dict[str, int]:
    """Every search key of a name with its rank (0: the common reading; see module docstring)."""
    name = name.strip()
    if not name:
        return {}
    ranks: dict[str, int] = {}

    def add(key: str, rank: int) -> None:
        key = key[:256]
        if key and (key not in ranks or rank < ranks[key]):
            ranks[key] = rank

    whole = _syllables(name)  # what core stores: pypinyin's reading of the whole name
    if whole:
        add("".join(whole), 0)
        add("".join(s[0] for s in whole), 0)
    for rank, surname, given in _readings(name):
        syl = surname + given
        if not syl:
            continue
        add("".join(syl), rank)
        add("".join(s[0] for s in syl), rank)
        if surname and given:
            add("".join(surname) + "".join(s[0] for s in given), rank)
    return ranks


def name_keys(name: str) -> frozenset[str]:
    """Every search key of a name (see module docstring). Pure, cached."""
    return frozenset(key_ranks(name))


def reading_rank(name: str, typed: str) -> int:
    """How unusual the reading is by which a typed pinyin prefix finds ``name`` (0: common)."""
    typed = normalize_key(typed)
    ranks = [r for k, r in key_ranks(name).items() if k.startswith(typed)]
    return min(ranks) if ranks else 99


def prefix_upper_bound(prefix: str) -> str:
    """The smallest string greater than every string starting with ``prefix`` (code points)."""
    p = prefix
    while p:
        last = ord(p[-1])
        if last < 0x10FFFF:
            return p[:-1] + chr(last + 1)
        p = p[:-1]
    raise ValueError("empty prefix has no upper bound")
