"""Text normalised for speech: numbers, dates, times and rooms the way residents say them."""

from __future__ import annotations

import pytest

from voice.speech_text import digits_reading, for_speech, value_reading


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        # addresses: building and unit by value, room digit by digit
        ("3栋2单元501", "三栋二单元五零一"),
        ("12号楼1单元1203室", "十二号楼一单元一二零三室"),
        ("您住在101室吗？", "您住在一零一室吗？"),
        ("5层", "五层"),
        # dates and times
        ("11月25日下午", "十一月二十五日下午"),
        ("12月3号", "十二月三号"),
        ("2024-11-25", "二零二四年十一月二十五日"),
        ("2026年", "二零二六年"),
        ("会议在14:30开始", "会议在下午两点半开始"),
        ("9:05", "九点零五分"),
        ("早上8:00", "早上八点"),
        ("19:45", "晚上七点四十五分"),
        ("0:15", "凌晨十二点十五分"),
        ("14：00", "下午两点"),
        # quantities and money
        ("订了2份午餐，共12.5元。", "订了两份午餐，共十二点五元。"),
        ("共120人", "共一百二十人"),
        ("第2次", "第二次"),
        ("2000元", "两千元"),
        ("补贴50%", "补贴百分之五十"),
        ("上午9-11点", "上午九到十一点"),
        ("3~5天", "三到五天"),
        # codes and phone numbers
        ("验证码 048213", "验证码 零四八二一三"),
        ("请拨打13812345678", "请拨打幺三八幺二三四五六七八"),
        ("单号20241125001", "单号二零二四幺幺二五零零幺"),
        # full-width digits, and text without numbers untouched
        ("３栋", "三栋"),
        ("好的，已经记下了！", "好的，已经记下了！"),
    ],
)
def test_for_speech(text: str, spoken: str) -> None:
    assert for_speech(text) == spoken


def test_readings() -> None:
    assert digits_reading("501") == "五零一"
    assert digits_reading("110", yao=True) == "幺幺零"
    assert value_reading("105") == "一百零五"
    assert value_reading("200") == "两百"
    assert value_reading("22") == "二十二"


def test_normalising_twice_changes_nothing() -> None:
    text = "3栋2单元501，明天14:30，验证码048213，共12.5元。"
    assert for_speech(for_speech(text)) == for_speech(text)
