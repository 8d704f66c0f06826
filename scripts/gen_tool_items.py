"""Write the built-in ``tools`` eval suite: requests to a product's assistant, with its tools.

Same approach as ``gen_eval_items.py`` (whose name pools it reuses): project-written templates,
fictional companies, people and orders, a fixed seed, so a rerun writes the same file. Each item
offers 2-4 tools (OpenAI function definitions) in varied order; the gold is the one call a
careful assistant makes, with every argument value copied from the request text (enum values
as the text writes them), or ``null`` where no tool fits and a text answer is right.

    .venv/bin/python scripts/gen_tool_items.py      # rewrites evals/data/tools.jsonl
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

from gen_eval_items import (
    CARRIERS,
    COMPANIES,
    FIRST,
    LAST,
    PRODUCTS,
    SUITES,
    amount,
    order_id,
    person,
)

COUNT = 150
CITIES = ["Lisbon", "Osaka", "Nairobi", "Toronto", "Krakow", "Lyon", "Austin", "Bergen",
          "Pune", "Valparaiso", "Leeds", "Hobart"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
TIMES = ["9:00", "10:30", "13:00", "14:15", "16:00", "17:30"]


def _fn(name: str, description: str, props: dict[str, Any], required: list[str]
        ) -> dict[str, Any]:
    return {"type": "function", "function": {
        "name": name, "description": description,
        "parameters": {"type": "object", "properties": props, "required": required}}}


STR = {"type": "string"}
NUM = {"type": "number"}
INT = {"type": "integer"}

TOOLS: dict[str, dict[str, Any]] = {t["function"]["name"]: t for t in (
    _fn("get_order", "Look up an order's status and contents by its id.",
        {"order_id": STR}, ["order_id"]),
    _fn("cancel_order", "Cancel an order that has not shipped yet.",
        {"order_id": STR, "reason": {"type": "string",
                                     "enum": ["changed_mind", "duplicate", "too_slow"]}},
        ["order_id", "reason"]),
    _fn("track_shipment", "Where a parcel is, by carrier and tracking number.",
        {"carrier": {"type": "string", "enum": CARRIERS}, "tracking_number": STR},
        ["carrier", "tracking_number"]),
    _fn("issue_refund", "Refund an amount of an order to the customer.",
        {"order_id": STR, "amount": NUM, "currency": {"type": "string",
                                                      "enum": ["USD", "EUR", "GBP"]}},
        ["order_id", "amount", "currency"]),
    _fn("get_weather", "Current weather for a city.",
        {"city": STR, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        ["city", "unit"]),
    _fn("book_meeting", "Book a meeting with a colleague.",
        {"with_person": STR, "day": {"type": "string", "enum": WEEKDAYS}, "time": STR},
        ["with_person", "day", "time"]),
    _fn("find_customer", "Find a customer record by email address.",
        {"email": STR}, ["email"]),
    _fn("search_products", "Search the catalogue, optionally under a price.",
        {"query": STR, "max_price": NUM}, ["query"]),
    _fn("update_stock", "Set how many units of a product are in stock.",
        {"product": STR, "quantity": INT}, ["product", "quantity"]),
    _fn("convert_currency", "Convert an amount between currencies.",
        {"amount": NUM, "from_currency": {"type": "string", "enum": ["USD", "EUR", "GBP"]},
         "to_currency": {"type": "string", "enum": ["USD", "EUR", "GBP"]}},
        ["amount", "from_currency", "to_currency"]),
)}

Case = tuple[str, str | None, dict[str, Any]]  # request text, gold function, gold arguments


def _get_order(r: random.Random) -> Case:
    oid = order_id(r)
    text = r.choice([f"What's the status of order {oid}?",
                     f"Can you check what is in order {oid} for me?",
                     f"Hi, I ordered last week, my order number is {oid}. Has it shipped?",
                     f"Look up {oid} please, the customer says it never arrived."])
    return text, "get_order", {"order_id": oid}


def _cancel_order(r: random.Random) -> Case:
    oid = order_id(r)
    reason, words = r.choice([("changed_mind", "I changed my mind"),
                              ("duplicate", "I placed it twice by mistake, it's a duplicate"),
                              ("too_slow", "delivery is too slow")])
    text = r.choice([f"Please cancel order {oid}, {words}.",
                     f"Cancel {oid}. Reason: {words}.",
                     f"I want to cancel my order {oid} because {words}."])
    return text, "cancel_order", {"order_id": oid, "reason": reason}


def _track(r: random.Random) -> Case:
    carrier = r.choice(CARRIERS)
    number = f"{r.choice(['1Z', 'JX', 'TR'])}{r.randint(10**7, 10**8 - 1)}"
    text = r.choice([f"Where is my parcel? {carrier} tracking number {number}.",
                     f"Track {number} with {carrier}, please.",
                     f"The {carrier} number is {number}, can you see where the package is?"])
    return text, "track_shipment", {"carrier": carrier, "tracking_number": number}


def _refund(r: random.Random) -> Case:
    oid, value, cur = order_id(r), amount(r), r.choice(["USD", "EUR", "GBP"])
    text = r.choice([f"Refund {value} {cur} on order {oid}, the item arrived broken.",
                     f"Order {oid}: please give the customer a refund of {value} {cur}.",
                     f"Issue a {value} {cur} refund for {oid}."])
    return text, "issue_refund", {"order_id": oid, "amount": value, "currency": cur}


def _weather(r: random.Random) -> Case:
    city, unit = r.choice(CITIES), r.choice(["celsius", "fahrenheit"])
    text = r.choice([f"What's the weather in {city} right now, in {unit}?",
                     f"Is it cold in {city} today? Give me the temperature in {unit}.",
                     f"Weather for {city} please ({unit})."])
    return text, "get_weather", {"city": city, "unit": unit}


def _meeting(r: random.Random) -> Case:
    who, wd, at = f"{r.choice(FIRST)} {r.choice(LAST)}", r.choice(WEEKDAYS), r.choice(TIMES)
    text = r.choice([f"Book a meeting with {who} on {wd} at {at}.",
                     f"Can you set up time with {who}? {wd}, {at} works for me.",
                     f"Schedule {who} for {wd} {at}."])
    return text, "book_meeting", {"with_person": who, "day": wd, "time": at}


def _customer(r: random.Random) -> Case:
    first, last = r.choice(FIRST).lower(), r.choice(LAST).lower()
    email = f"{first}.{last}@{r.choice(['example.com', 'mail.test', 'shop.example'])}"
    text = r.choice([f"Find the customer with email {email}.",
                     f"Who is {email}? Pull up their account.",
                     f"A customer wrote from {email}, can you find their record?"])
    return text, "find_customer", {"email": email}


def _search(r: random.Random) -> Case:
    product = r.choice(PRODUCTS)
    if r.random() < 0.5:
        price = float(r.choice([50, 80, 120, 200, 350]))
        text = r.choice([f"Do we sell a {product} under {price:g} dollars?",
                         f"Search for {product} with a max price of {price:g}."])
        return text, "search_products", {"query": product, "max_price": price}
    text = r.choice([f"Search the catalogue for {product}.", f"Do you have any {product}?"])
    return text, "search_products", {"query": product}


def _stock(r: random.Random) -> Case:
    product, qty = r.choice(PRODUCTS), r.randint(0, 400)
    text = r.choice([f"Set the stock of {product} to {qty} units.",
                     f"We counted {qty} of the {product} in the warehouse, update the stock.",
                     f"Update stock: {product}, quantity {qty}."])
    return text, "update_stock", {"product": product, "quantity": qty}


def _convert(r: random.Random) -> Case:
    value = float(r.choice([20, 75, 120, 999, 1500, 42.5]))
    src, dst = r.sample(["USD", "EUR", "GBP"], 2)
    text = r.choice([f"How much is {value:g} {src} in {dst}?",
                     f"Convert {value:g} {src} to {dst}."])
    return text, "convert_currency", {"amount": value, "from_currency": src, "to_currency": dst}


def _no_call(r: random.Random) -> Case:
    company = r.choice(COMPANIES)
    text = r.choice([f"Thanks, that's all for today! Say hi to the {company} team.",
                     "Write a one-line thank-you note to a customer.",
                     f"What does {company} do? Answer in one sentence if you know.",
                     f"Tell {person(r)} in one sentence that their question was forwarded.",
                     "What is 12 times 12?"])
    return text, None, {}


MAKERS: dict[str, Callable[[random.Random], Case]] = {
    "get_order": _get_order, "cancel_order": _cancel_order, "track_shipment": _track,
    "issue_refund": _refund, "get_weather": _weather, "book_meeting": _meeting,
    "find_customer": _customer, "search_products": _search, "update_stock": _stock,
    "convert_currency": _convert,
}
NO_CALL_EVERY = 8  # one item in 8 wants a text answer


def items(r: random.Random) -> list[dict[str, Any]]:
    out = []
    names = list(MAKERS)
    for i in range(COUNT):
        if i % NO_CALL_EVERY == NO_CALL_EVERY - 1:
            text, gold_name, args = _no_call(r)
            offered = r.sample(names, r.randint(2, 4))
        else:
            target = names[i % len(names)]
            text, gold_name, args = MAKERS[target](r)
            others = r.sample([n for n in names if n != target], r.randint(1, 3))
            offered = [target, *others]
            r.shuffle(offered)
        gold = None if gold_name is None else {"name": gold_name, "arguments": args}
        out.append({"id": f"tg{i + 1:03d}", "text": text,
                    "tools": [TOOLS[n] for n in offered], "gold": gold})
    return out


def main() -> None:
    path = SUITES / "tools.jsonl"
    path.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n"
                            for i in items(random.Random("modelyard-tools"))))


if __name__ == "__main__":
    main()
