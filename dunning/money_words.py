"""Amounts in Chinese capital numerals (大写金额), as cheques, contracts and lawyer letters write
them beside the figures: ``Decimal("12345.60")`` is ``人民币壹万贰仟叁佰肆拾伍元陆角整``.

The rules are those of the People's Bank of China's 支付结算办法 (附件一, 正确填写票据和结算凭证的
基本规定): ``整`` after an amount that ends with 元 (and after 角), never after 分; one 零 for a
run of zero digits inside the number (壹万零伍元); 零 between 元 and a 分 with no 角
(壹佰元零伍分).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

__all__ = ["rmb_capitals"]

_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_UNITS = ("仟", "佰", "拾", "")
_GROUPS = ("", "万", "亿", "万亿")


def _group(value: int) -> str:
    """1..9999 in capitals, with one 零 for each run of zeros between digits."""
    out, zero = "", False
    digits = (value // 1000, value // 100 % 10, value // 10 % 10, value % 10)
    for digit, unit in zip(digits, _UNITS, strict=True):
        if digit == 0:
            zero = bool(out)
            continue
        if zero:
            out += "零"
            zero = False
        out += _DIGITS[digit] + unit
    return out


def _integer(value: int) -> str:
    groups = []
    while value:
        groups.append(value % 10000)
        value //= 10000
    if len(groups) > len(_GROUPS):
        raise ValueError("amount too large for Chinese capitals")
    out, gap = "", False
    for index in reversed(range(len(groups))):
        part = groups[index]
        if part == 0:
            gap = bool(out)
            continue
        if out and (gap or part < 1000):
            out += "零"
        out += _group(part) + _GROUPS[index]
        gap = False
    return out


def rmb_capitals(amount: Decimal, *, prefix: str = "人民币") -> str:
    """``amount`` (yuan, rounded to the fen) in capitals; ValueError when negative."""
    if amount < 0:
        raise ValueError("a negative amount has no capitals")
    fen_total = int(amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP) * 100)
    yuan, jiao, fen = fen_total // 100, fen_total // 10 % 10, fen_total % 10
    if fen_total == 0:
        return f"{prefix}零元整"
    out = f"{_integer(yuan)}元" if yuan else ""
    if jiao == 0 and fen == 0:
        return f"{prefix}{out}整"
    if jiao:
        out += f"{_DIGITS[jiao]}角"
    elif yuan:
        out += "零"
    if fen:
        return f"{prefix}{out}{_DIGITS[fen]}分"
    return f"{prefix}{out}整"
