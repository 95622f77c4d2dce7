"""Static tables the fleet generator draws from (models, names, blueprints, tags)."""

from __future__ import annotations

from typing import Final

__all__ = [
    "BLUEPRINT_NAMES",
    "FIRST_NAMES",
    "LAST_NAMES",
    "MODELS",
    "PLATFORM_WEIGHTS",
    "SERIAL_ALPHABET",
    "TAG_NAMES",
]

# Platform mix: ~60% Mac, 20% iPhone, 15% iPad, 5% Apple TV.
PLATFORM_WEIGHTS: Final[tuple[tuple[str, int], ...]] = (
    ("Mac", 60),
    ("iPhone", 20),
    ("iPad", 15),
    ("AppleTV", 5),
)

# platform -> (model, model_identifier, os versions, ABM description)
MODELS: Final[dict[str, tuple[tuple[str, str, tuple[str, ...], str], ...]]] = {
    "Mac": (
        ("MacBook Air (M1, 2020)", "MacBookAir10,1", ("14.4.1", "14.7.1", "15.1"), "MBA 13.3"),
        ("MacBook Air (M2, 2022)", "Mac14,2", ("14.7.1", "15.1", "15.3.2"), "MBA 13.6"),
        ("MacBook Pro (14-inch, 2023)", "Mac14,9", ("14.6", "15.1", "15.3.2"), "MBP 14"),
        ("MacBook Pro (16-inch, 2021)", "MacBookPro18,1", ("13.6.7", "14.7.1"), "MBP 16"),
        ("Mac mini (M2, 2023)", "Mac14,3", ("14.4.1", "15.1"), "MAC MINI M2"),
        ("iMac (24-inch, M1, 2021)", "iMac21,1", ("13.6.7", "14.7.1"), "IMAC 24"),
        ("Mac Studio (2022)", "Mac13,1", ("14.7.1", "15.3.2"), "MAC STUDIO"),
    ),
    "iPhone": (
        ("iPhone 13", "iPhone14,5", ("17.5.1", "18.1"), "IPHONE 13 128GB"),
        ("iPhone 14 Pro", "iPhone15,2", ("17.6.1", "18.1", "18.3"), "IPHONE 14 PRO 256GB"),
        ("iPhone 15", "iPhone15,4", ("18.1", "18.3"), "IPHONE 15 128GB"),
        ("iPhone SE (3rd generation)", "iPhone14,6", ("17.5.1", "18.1"), "IPHONE SE 64GB"),
    ),
    "iPad": (
        ("iPad (9th generation) (Wi-Fi)", "iPad12,1", ("17.5.1", "18.1"), "IPAD WI-FI 64GB"),
        ("iPad Air (5th generation)", "iPad13,16", ("17.6.1", "18.1"), "IPAD AIR WI-FI 64GB"),
        ("iPad Pro (11-inch) (4th generation)", "iPad14,3", ("18.1", "18.3"), "IPAD PRO 11"),
    ),
    "AppleTV": (
        ("Apple TV 4K (2nd generation)", "AppleTV11,1", ("17.5", "18.1"), "APPLE TV 4K 32GB"),
        ("Apple TV 4K (3rd generation)", "AppleTV14,1", ("18.1", "18.2"), "APPLE TV 4K 64GB"),
    ),
}

# Uppercase alphanumerics without the look-alikes O and I, as Apple serials avoid them.
SERIAL_ALPHABET: Final[str] = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"

# "Default" always exists; the others are drawn. A hint after "|" names the platform a
# blueprint is meant for (devices of other platforms are never assigned to it).
BLUEPRINT_NAMES: Final[tuple[str, ...]] = (
    "Default",
    "Engineering Macs|Mac",
    "Sales",
    "Kiosk iPads|iPad",
    "Executive",
    "Shared iPads|iPad",
    "Lab Apple TVs|AppleTV",
    "Contractors|Mac",
    "Field iPhones|iPhone",
    "Finance Macs|Mac",
)

TAG_NAMES: Final[tuple[str, ...]] = (
    "wave-1",
    "wave-2",
    "wave-3",
    "remote",
    "hq",
    "loaner",
    "vip",
    "finance",
    "byod",
    "pilot",
)

FIRST_NAMES: Final[tuple[str, ...]] = (
    "Ada", "Alan", "Amara", "Ben", "Chen", "Chloé", "Dana", "Diego", "Elif", "Emma",
    "Farah", "Grace", "Hana", "Ivan", "Jonas", "Kai", "Lena", "Liam", "Maya", "Mei",
    "Noah", "Nora", "Omar", "Priya", "Quinn", "Rosa", "Sam", "Sofia", "Tariq", "Uma",
    "Victor", "Wen", "Yara", "Zoe",
)  # fmt: skip

LAST_NAMES: Final[tuple[str, ...]] = (
    "Abbott", "Bauer", "Castro", "Dubois", "Eriksen", "Fischer", "García", "Hughes", "Ito",
    "Jensen", "Kowalski", "Larsen", "Moreau", "Nakamura", "Okafor", "Patel", "Quint", "Rossi",
    "Schmidt", "Tanaka", "Umar", "Varga", "Walsh", "Xu", "Yilmaz", "Zimmermann",
)  # fmt: skip
