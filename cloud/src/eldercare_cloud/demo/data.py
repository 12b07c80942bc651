"""A demo district: 杭州市西湖区, three communities, twelve elders and the people around them.

Names, addresses and phone numbers are invented (phone numbers use the 139-0000 test
range); coordinates are near the real communities so a map looks right.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

DISTRICT = {"id": "D-XH", "name": "西湖区", "province": "浙江省", "city": "杭州市",
            "code": "330106"}

COMMUNITIES = [
    {"id": "C-XH-CY", "name": "翠苑街道翠苑一区社区", "address": "杭州市西湖区翠苑街道文二西路",
     "phone": "057188000101"},
    {"id": "C-XH-GD", "name": "古荡街道古荡新村社区", "address": "杭州市西湖区古荡街道益乐路",
     "phone": "057188000102"},
    {"id": "C-XH-LY", "name": "灵隐街道玉泉社区", "address": "杭州市西湖区灵隐街道玉古路",
     "phone": "057188000103"},
]

#: community grid workers (网格员), one per community, asked after family and neighbours
GRID_WORKERS = {
    "C-XH-CY": ("沈建华", "13900001001"),
    "C-XH-GD": ("钱丽萍", "13900001002"),
    "C-XH-LY": ("孙国强", "13900001003"),
}

#: registered volunteers (志愿者) per community
VOLUNTEERS = {
    "C-XH-CY": [("周晓燕", "13900002001")],
    "C-XH-GD": [("吴志明", "13900002002")],
    "C-XH-LY": [("郑海涛", "13900002003")],
}

STANDARD_ROOMS = ["客厅", "卧室", "厨房", "卫生间"]


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    birth: date
    sex: str
    phone: str | None
    conditions: list[str]
    medications: list[str]
    allergies: list[str]
    mobility: str
    cognitive: str
    care_level: int
    language: str
    wandering: bool = False
    thresholds: dict[str, dict[str, float]] = field(default_factory=dict)
    #: entitlement categories (registry.models.ResidentCategory values)
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class Home:
    id: str
    community: str
    address: str
    lat: float
    lon: float
    living: str
    key_safe: dict[str, str] | None
    residents: list[Person]
    #: (name, relation, phone, priority)
    contacts: list[tuple[str, str, str, int]]
    devices: list[tuple[str, str]]  # (type, room)


HR = {"heart_rate": {"low": 45.0, "high": 120.0}, "spo2": {"low": 90.0}}

HOMES: list[Home] = [
    Home("H-XH-001", "C-XH-CY", "杭州市西湖区文二西路翠苑一区3幢2单元301室", 30.2868, 120.1229,
         "alone", {"code": "4721", "location": "门口电表箱内", "notes": "先敲门三声再开"},
         [Person("R-XH-001", "王秀英", date(1938, 4, 12), "female", "057188120301",
                 ["高血压", "2型糖尿病"], ["氨氯地平 5mg 每日一次", "二甲双胍 0.5g 每日两次"],
                 ["青霉素"], "walking_aid", "none", 3, "杭州话", thresholds=HR,
                 categories=("dibao", "semi_disabled"))],
         [("李建国", "family", "13900003001", 10), ("李建英", "family", "13900003002", 20),
          ("张阿姨", "neighbour", "13900003003", 30)],
         [("call_button", "卧室"), ("door_contact", "客厅"), ("gas_detector", "厨房"),
          ("smoke_detector", "客厅"), ("fall_radar", "卫生间")]),
    Home("H-XH-002", "C-XH-CY", "杭州市西湖区文二西路翠苑一区7幢1单元502室", 30.2874, 120.1241,
         "with_spouse", {"code": "0815", "location": "楼道消防栓箱内", "notes": ""},
         [Person("R-XH-002", "陈德明", date(1935, 9, 3), "male", "057188120502",
                 ["冠心病", "慢性阻塞性肺病"], ["阿司匹林 100mg 每日一次", "沙美特罗吸入剂"],
                 [], "walking_aid", "none", 3, "杭州话", thresholds=HR),
          Person("R-XH-003", "刘桂兰", date(1939, 1, 21), "female", None,
                 ["阿尔茨海默病（中度）"], ["多奈哌齐 5mg 每晚一次"], [], "independent",
                 "moderate", 4, "杭州话", wandering=True,
                 categories=("dementia",))],
         [("陈晓东", "family", "13900003011", 10), ("黄大伯", "neighbour", "13900003012", 30)],
         [("call_button", "卧室"), ("door_contact", "客厅"), ("gas_detector", "厨房"),
          ("bed_sensor", "卧室"), ("gps_tracker", "卧室"), ("motion_sensor", "客厅")]),
    Home("H-XH-003", "C-XH-CY", "杭州市西湖区学院路翠苑二区12幢3单元101室", 30.2851, 120.1267,
         "alone", None,
         [Person("R-XH-004", "赵玉珍", date(1941, 6, 30), "female", "057188121101",
                 ["骨质疏松", "白内障术后"], ["钙尔奇D 每日一片"], ["磺胺类药物"],
                 "independent", "mild", 2, "普通话")],
         [("赵伟", "family", "13900003021", 10), ("杨阿婆", "neighbour", "13900003022", 30)],
         [("call_button", "客厅"), ("door_contact", "客厅"), ("gas_detector", "厨房"),
          ("motion_sensor", "客厅")]),
    Home("H-XH-004", "C-XH-CY", "杭州市西湖区文三路翠苑四区5幢2单元402室", 30.2835, 120.1212,
         "alone", {"code": "2580", "location": "门框上方密码盒", "notes": "家中养猫"},
         [Person("R-XH-005", "孙阿大", date(1933, 11, 8), "male", None,
                 ["帕金森病", "前列腺增生"], ["多巴丝肼 每日三次"], [], "wheelchair", "mild",
                 4, "杭州话", thresholds=HR, categories=("disabled", "tekun"))],
         [("孙丽华", "family", "13900003031", 10), ("孙丽芳", "family", "13900003032", 20),
          ("马师傅", "neighbour", "13900003033", 30)],
         [("call_button", "卧室"), ("door_contact", "客厅"), ("vitals_monitor", "卧室"),
          ("fall_radar", "卧室"), ("smoke_detector", "厨房")]),
    Home("H-XH-005", "C-XH-GD", "杭州市西湖区益乐路古荡新村21幢1单元201室", 30.2782, 120.1155,
         "alone", {"code": "9134", "location": "一楼信箱下方", "notes": ""},
         [Person("R-XH-006", "钱美娟", date(1940, 2, 14), "female", "057188130201",
                 ["高血压", "房颤"], ["华法林 2.5mg 每日一次", "美托洛尔 25mg 每日两次"],
                 ["海鲜"], "independent", "none", 2, "杭州话", thresholds=HR)],
         [("钱建平", "family", "13900003041", 10), ("胡阿姨", "neighbour", "13900003042", 30)],
         [("call_button", "卧室"), ("door_contact", "客厅"), ("gas_detector", "厨房"),
          ("vitals_monitor", "卧室")]),
    Home("H-XH-006", "C-XH-GD", "杭州市西湖区古墩路古荡新村8幢3单元602室", 30.2796, 120.1132,
         "alone", None,
         [Person("R-XH-007", "周福生", date(1936, 7, 19), "male", "057188130602",
                 ["脑卒中后遗症", "高血脂"], ["阿托伐他汀 20mg 每晚一次", "氯吡格雷 75mg"],
                 [], "walking_aid", "none", 3, "绍兴话", thresholds=HR)],
         [("周敏", "family", "13900003051", 10), ("林大哥", "neighbour", "13900003052", 30)],
         [("call_button", "卧室"), ("door_contact", "客厅"), ("fall_radar", "卫生间"),
          ("bed_sensor", "卧室")]),
    Home("H-XH-007", "C-XH-GD", "杭州市西湖区益乐路古荡湾新村4幢1单元103室", 30.2761, 120.1171,
         "with_family", {"code": "3366", "location": "院门右侧花盆下密码盒", "notes": ""},
         [Person("R-XH-008", "吴金花", date(1943, 5, 2), "female", None,
                 ["糖尿病足", "高血压"], ["胰岛素 早晚各一次"], ["头孢类"], "wheelchair",
                 "none", 4, "普通话", thresholds=HR)],
         [("吴晓勇", "family", "13900003061", 10), ("何阿姨", "neighbour", "13900003062", 30)],
         [("call_button", "卧室"), ("door_contact", "客厅"), ("gas_detector", "厨房"),
          ("smoke_detector", "客厅"), ("vitals_monitor", "卧室")]),
    Home("H-XH-008", "C-XH-LY", "杭州市西湖区玉古路玉泉新村2幢2单元301室", 30.2659, 120.1310,
         "alone", {"code": "7070", "location": "门口鞋柜抽屉", "notes": "老人耳背，多按门铃"},
         [Person("R-XH-009", "郑长根", date(1930, 12, 25), "male", "057188140301",
                 ["听力障碍", "慢性心衰"], ["呋塞米 20mg 每日一次"], [], "walking_aid", "none",
                 4, "杭州话", thresholds=HR, categories=("dibian",))],
         [("郑小红", "family", "13900003071", 10), ("王大姐", "neighbour", "13900003072", 30)],
         [("call_button", "卧室"), ("door_contact", "客厅"), ("fall_radar", "卫生间"),
          ("vitals_monitor", "卧室"), ("smoke_detector", "厨房")]),
    Home("H-XH-009", "C-XH-LY", "杭州市西湖区曙光路玉泉社区6幢1单元202室", 30.2677, 120.1342,
         "with_spouse", None,
         [Person("R-XH-010", "冯志刚", date(1942, 3, 17), "male", "057188140202",
                 ["肺癌术后"], ["止痛贴（按需）"], [], "independent", "none", 3, "普通话"),
          Person("R-XH-011", "何淑芬", date(1944, 8, 9), "female", None,
                 ["轻度认知障碍"], [], [], "independent", "mild", 2, "普通话")],
         [("冯磊", "family", "13900003081", 10), ("蒋阿姨", "neighbour", "13900003082", 30)],
         [("call_button", "卧室"), ("door_contact", "客厅"), ("gas_detector", "厨房"),
          ("motion_sensor", "客厅")]),
    Home("H-XH-010", "C-XH-LY", "杭州市西湖区玉古路求是村9幢3单元401室", 30.2690, 120.1288,
         "alone", {"code": "5151", "location": "楼梯间电箱内", "notes": ""},
         [Person("R-XH-012", "褚秀兰", date(1937, 10, 1), "female", "057188140401",
                 ["高血压", "骨关节炎"], ["硝苯地平缓释片 每日一次"], [], "walking_aid", "none",
                 3, "杭州话", thresholds=HR)],
         [("褚国华", "family", "13900003091", 10), ("卫大妈", "neighbour", "13900003092", 30)],
         [("call_button", "卧室"), ("door_contact", "客厅"), ("gas_detector", "厨房"),
          ("fall_radar", "卫生间")]),
]

DEVICE_PREFIX = {"call_button": "btn", "door_contact": "door", "gas_detector": "gas",
                 "smoke_detector": "smoke", "vitals_monitor": "vitals", "bed_sensor": "bed",
                 "motion_sensor": "pir", "fall_radar": "radar", "gps_tracker": "gps"}
