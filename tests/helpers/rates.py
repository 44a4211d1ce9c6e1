"""Answers in the shape each rate provider documents, for a local server to give."""

BINANCE_PATH = "/bapi/c2c/v2/friendly/c2c/adv/search"


def binance_answer(*prices, code="000000"):
    return {
        "code": code,
        "message": None,
        "messageDetail": None,
        "success": code == "000000",
        "total": len(prices),
        "data": [
            {
                "adv": {
                    "advNo": str(i),
                    "price": price,
                    "asset": "USDT",
                    "fiatUnit": "BOB",
                    "tradableQuantity": "500.00",
                },
                "advertiser": {"nickName": f"trader{i}"},
            }
            for i, price in enumerate(prices)
        ],
    }
