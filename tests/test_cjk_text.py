"""Chinese analysis: tokens, query clauses, snippets (no index involved)."""

from __future__ import annotations

import pytest

from bingan.core import cjk_text as a


def test_index_tokens_unigrams_bigrams_words():
    uni, bi = a.index_tokens("诊断：急性阑尾炎（K35.8）")
    assert uni.split() == ["诊", "断", "急", "性", "阑", "尾", "炎", "k35.8", "k35", "8"]
    # bigrams never cross punctuation: 断急 is not a bigram (： between), and GAP takes a
    # position between the two CJK runs so that no phrase spans them
    assert bi.split() == ["诊断", a.GAP, "急性", "性阑", "阑尾", "尾炎", "k35.8"]


def test_gap_between_cjk_runs_and_between_words_split_by_han():
    bi = lambda t: a.index_tokens(t)[1].split()  # noqa: E731
    assert bi("阑尾，尾炎") == ["阑尾", a.GAP, "尾炎"]
    assert bi("阑尾，炎，尾炎") == ["阑尾", a.GAP, "尾炎"]  # a one-character run has no bigram
    assert bi("急性阑尾炎") == ["急性", "性阑", "阑尾", "尾炎"]
    assert bi("阑尾 k35 尾炎") == ["阑尾", "k35", "尾炎"]  # a word between: never adjacent
    # words stay adjacent across spaces and punctuation, not across Han or a dropped word
    assert bi("acute, appendicitis") == ["acute", "appendicitis"]
    assert bi("acute 急 appendicitis") == ["acute", a.GAP, "appendicitis"]
    assert bi(f"acute {'x' * (a.MAX_WORD + 1)} appendicitis") == ["acute", a.GAP, "appendicitis"]
    assert bi("，阑尾。") == ["阑尾"]  # no GAP at either end
    # no query clause ever has GAP as a token
    assert all(a.GAP not in c.tokens for c in a.parse_query(f'阑尾{a.GAP}尾炎 "x {a.GAP} y" |'))


def test_index_tokens_longer_han_ngrams():
    uni, bi, tri, quad = a.index_tokens("诊断：急性阑尾炎（K35.8）", (3, 4))
    assert (uni, bi) == a.index_tokens("诊断：急性阑尾炎（K35.8）")
    assert tri.split() == ["急性阑", "性阑尾", "阑尾炎"]  # 诊断 is too short, words have none
    assert quad.split() == ["急性阑尾", "性阑尾炎"]
    assert a.index_tokens("阑尾，尾炎", (3,))[2] == ""  # never across punctuation
    assert [c.run for c in a.parse_query("急性 阑尾炎 K35")] == ["急性", "阑尾炎", ""]


def test_whitespace_inside_chinese_is_ignored_punctuation_is_not():
    assert a.index_tokens("阑 尾\n炎")[1].split() == ["阑尾", "尾炎"]
    assert a.index_tokens("阑，尾炎")[1].split() == ["尾炎"]
    assert a.index_tokens("阑尾，尾炎")[1].split() == ["阑尾", a.GAP, "尾炎"]


def test_full_width_and_case_fold():
    assert a.index_tokens("Ｋ３５．８ CT")[0].split() == ["k35.8", "k35", "8", "ct"]
    assert a.parse_query("Ｋ３５．８") == a.parse_query("k35.8")


def test_overlong_words_are_dropped():
    noise = "x" * (a.MAX_WORD + 1)
    assert a.index_tokens(f"{noise} 阑尾")[0].split() == ["阑", "尾"]


def test_query_clauses():
    (one,) = a.parse_query("癌")
    assert (one.kind, one.field, one.tokens) == ("term", "uni", ("癌",))
    (two,) = a.parse_query("阑尾")
    assert (two.kind, two.field, two.tokens) == ("term", "bi", ("阑尾",))
    (three,) = a.parse_query("阑尾炎")
    assert (three.kind, three.field, three.tokens) == ("phrase", "bi", ("阑尾", "尾炎"))
    both = a.parse_query("阑尾炎 K35")
    assert [(c.kind, c.tokens) for c in both] == [("phrase", ("阑尾", "尾炎")), ("term", ("k35",))]
    # quoted: one phrase across the space; unquoted: two parts
    (quoted,) = a.parse_query("“急性 阑尾炎”")
    assert quoted.tokens == ("急性", "性阑", "阑尾", "尾炎")
    assert len(a.parse_query("急性 阑尾炎")) == 2
    (words,) = a.parse_query('"Acute appendicitis"')
    assert (words.kind, words.tokens) == ("phrase", ("acute", "appendicitis"))
    assert a.parse_query("阑尾 阑尾") == a.parse_query("阑尾")
    assert a.parse_query("  ，。 ") == []


def test_query_limits():
    with pytest.raises(a.QueryError, match="过长"):
        a.parse_query("阑" * (a.MAX_QUERY + 1))
    with pytest.raises(a.QueryError, match="太多"):
        a.parse_query(" ".join(f"w{i}" for i in range(a.MAX_CLAUSES + 1)))
    with pytest.raises(a.QueryError, match="文本"):
        a.parse_query(b"\xe9\x98\x91")  # type: ignore[arg-type]


def test_snippet_marks_the_phrase_and_keeps_page_characters():
    text = ("患者因转移性右下腹痛1天入院。" * 5 + "诊断：急性阑\n尾炎（Ｋ35.8），行腹腔镜阑尾切除术。"
            + "术后恢复良好。" * 10)
    s = a.snippet(text, a.parse_query("阑尾炎 k35"), 40)
    assert "«阑 尾炎»" in s and "«Ｋ35».8" in s and "（" in s
    assert s.startswith("…") and s.endswith("…")
    plain = s.replace(a.MARK_START, "").replace(a.MARK_END, "").strip("…")
    assert 40 <= len(plain) <= 45
    # every match inside the window is marked, not only the first
    assert a.snippet("阑尾，阑尾", a.parse_query("阑尾"), 100) == "«阑尾»，«阑尾»"


def test_snippet_mark_characters_in_text_are_neutralised():
    s = a.snippet("«引用»阑尾炎", a.parse_query("阑尾"), 100)
    assert s == "‹引用›«阑尾»炎"


def test_snippet_latin_word_boundaries():
    assert a.snippet("K35.8 和 K351", a.parse_query("k35"), 100) == "«K35».8 和 K351"
    assert a.snippet("右侧阑尾CT示", a.parse_query("ct"), 100) == "右侧阑尾«CT»示"


def test_text_boxes_follow_the_snippet_match_across_lines():
    from bingan.core.cjk_text import text_boxes

    lines = [("主诉：右下腹痛2天，急性阑", (100, 100, 700, 140)),
             ("尾炎待排。ＣＴ检查 K35.8", (100, 150, 500, 190))]
    # 急 after 19 of the line's 25 half-width cells; 尾炎 is 4 of the next line's 24
    assert text_boxes(lines, "急性阑尾炎") == [(556, 100, 700, 140), (100, 150, 167, 190)]
    # full-width letters fold as indexing does; words by their own width
    assert text_boxes(lines, "ct") == [(266, 150, 334, 190)]
    assert text_boxes(lines, "k35.8") == [(416, 150, 500, 190)]
    assert text_boxes(lines, "肺炎") == [] and text_boxes([], "肺炎") == []
    assert text_boxes(lines, "   ") == []
    with pytest.raises(a.QueryError):
        text_boxes(lines, "炎" * 300)
