"""Vietnam's provinces and centrally-run cities, as an address names them: a fixed list, not free text, so that
customers group by province. Pure.

The list is the 34 provincial-level units in force since 1 July 2025 (National Assembly Resolution
202/2025/QH15 on rearranging provincial-level administrative units: 6 cities, 28 provinces). An address keeps
the code (ASCII, stable); the name is for display. A later change of the map adds codes: stored addresses keep
theirs.
"""

from __future__ import annotations

from typing import Literal

PROVINCES: dict[str, str] = {
    # centrally-run cities
    "ha-noi": "Hà Nội",
    "hue": "Huế",
    "hai-phong": "Hải Phòng",
    "da-nang": "Đà Nẵng",
    "ho-chi-minh": "Hồ Chí Minh",
    "can-tho": "Cần Thơ",
    # provinces
    "tuyen-quang": "Tuyên Quang",
    "cao-bang": "Cao Bằng",
    "lai-chau": "Lai Châu",
    "lao-cai": "Lào Cai",
    "thai-nguyen": "Thái Nguyên",
    "dien-bien": "Điện Biên",
    "lang-son": "Lạng Sơn",
    "son-la": "Sơn La",
    "phu-tho": "Phú Thọ",
    "bac-ninh": "Bắc Ninh",
    "quang-ninh": "Quảng Ninh",
    "hung-yen": "Hưng Yên",
    "ninh-binh": "Ninh Bình",
    "thanh-hoa": "Thanh Hóa",
    "nghe-an": "Nghệ An",
    "ha-tinh": "Hà Tĩnh",
    "quang-tri": "Quảng Trị",
    "quang-ngai": "Quảng Ngãi",
    "gia-lai": "Gia Lai",
    "khanh-hoa": "Khánh Hòa",
    "lam-dong": "Lâm Đồng",
    "dak-lak": "Đắk Lắk",
    "dong-nai": "Đồng Nai",
    "tay-ninh": "Tây Ninh",
    "vinh-long": "Vĩnh Long",
    "dong-thap": "Đồng Tháp",
    "ca-mau": "Cà Mau",
    "an-giang": "An Giang",
}

Province = Literal[
    "ha-noi",
    "hue",
    "hai-phong",
    "da-nang",
    "ho-chi-minh",
    "can-tho",
    "tuyen-quang",
    "cao-bang",
    "lai-chau",
    "lao-cai",
    "thai-nguyen",
    "dien-bien",
    "lang-son",
    "son-la",
    "phu-tho",
    "bac-ninh",
    "quang-ninh",
    "hung-yen",
    "ninh-binh",
    "thanh-hoa",
    "nghe-an",
    "ha-tinh",
    "quang-tri",
    "quang-ngai",
    "gia-lai",
    "khanh-hoa",
    "lam-dong",
    "dak-lak",
    "dong-nai",
    "tay-ninh",
    "vinh-long",
    "dong-thap",
    "ca-mau",
    "an-giang",
]
