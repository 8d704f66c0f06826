"""Grow the built-in eval suites and the product gold sets with generated, project-written items.

The hand-written items stay first and unchanged; this appends items built from templates written
for Modelyard (fictional companies, people, orders), with a fixed seed, so a rerun produces the
same files. Every gold value is copied from the generated text, so scoring stays exact.

    .venv/bin/python scripts/gen_eval_items.py      # rewrites the generated tail of each file
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SUITES = ROOT / "model_registry" / "modelyard_registry" / "evals" / "data"
GOLD = ROOT / "bench" / "data" / "products_gold.jsonl"
PER_KIND = 150
PER_PRODUCT = 60

FIRST = ["Dana", "Omar", "Lena", "Kofi", "Mei", "Ravi", "Sofia", "Tomasz", "Aisha", "Jonas",
         "Ines", "Hiro", "Nadia", "Pablo", "Greta", "Samir", "Yuki", "Elena", "Marcus", "Zara"]
LAST = ["Whitfield", "Haddad", "Kowalski", "Mensah", "Tanaka", "Iyer", "Moreau", "Novak",
        "Okafor", "Lindqvist", "Ferreira", "Brandt", "Castillo", "Quinn", "Sato", "Petrov"]
COMPANIES = ["Brightline Office Supply", "Harbor Print Co.", "Northwind Outdoor", "Pinecrest Labs",
             "Moss & Thread", "Cobalt Cycles", "Lumen Home", "Redfern Coffee", "Alder Audio",
             "Kestrel Software", "Bluebay Pets", "Orchid Kitchenware", "Summit Sports"]
PRODUCTS = ["standing desk", "espresso machine", "trail running shoes", "noise-cancelling "
            "headphones", "cast-iron skillet", "wool blanket", "mechanical keyboard", "yoga mat",
            "smart thermostat", "carbon bike helmet", "ceramic teapot", "desk lamp", "backpack"]
CARRIERS = ["Coastline Express", "ParcelJet", "SwiftPost", "Northern Freight", "GreenRoute"]
APPS = ["SyncBox", "PayDeck", "Notely", "TrackPal", "CloudShelf", "MeetHub"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]
CURRENCIES = ["USD", "EUR", "GBP"]


def person(r: random.Random) -> str:
    return f"{r.choice(FIRST)} {r.choice(LAST)}"


def order_id(r: random.Random) -> str:
    return f"{r.choice(['ORD-', 'A', '#', 'SO-'])}{r.randint(10000, 99999)}".lstrip("#")


def amount(r: random.Random) -> float:
    return round(r.uniform(5, 900), 2)


def day(r: random.Random) -> str:
    return f"{r.randint(1, 28)} {r.choice(MONTHS)}"


# --- classify -------------------------------------------------------------------------------

SUPPORT = ["billing", "shipping", "technical", "account", "refund"]
SENTIMENT = ["positive", "negative", "neutral"]
URGENCY = ["low", "normal", "high", "urgent"]


def support_text(r: random.Random, label: str) -> str:
    o, p, a, app = order_id(r), r.choice(PRODUCTS), amount(r), r.choice(APPS)
    options = {
        "billing": [f"My card was charged {a} twice this month for one subscription. Please "
                    "correct the invoice.",
                    f"The invoice for order {o} shows a VAT rate that is wrong for my country. "
                    "Can you reissue it?",
                    f"Why did my plan price go up to {a} without notice? I was never told about "
                    "a price change.",
                    "I need to change the card we pay with before the next billing date."],
        "shipping": [f"Order {o} with the {p} was due on Monday but the tracking page has not "
                     "moved in four days.",
                     f"The courier left my {p} at the wrong address. Where is my parcel now?",
                     f"Can you ship order {o} to my office instead of my home? It has not left "
                     "the warehouse yet.",
                     f"My parcel for order {o} says delivered, but nothing arrived at my door."],
        "technical": [f"Since the latest update the {app} app crashes as soon as I open it.",
                      f"{app} shows error 500 every time I try to export a report.",
                      f"The {app} sync has been stuck at 99% for two days on my laptop.",
                      f"I cannot upload files larger than 10 MB to {app}; the upload just "
                      "spins."],
        "account": ["I never receive the password reset email, not even in spam.",
                    "Please change the email address on my profile; I lost access to the old "
                    "one.",
                    "How do I add a second user to our team account?",
                    "My account got locked after too many sign-in attempts. Please unlock it."],
        "refund": [f"I returned the {p} from order {o} two weeks ago and still have not received "
                   "my money back.",
                   f"The {p} arrived broken. I do not want a replacement, please refund {a}.",
                   f"I cancelled order {o} within the hour. When will the refund reach my card?",
                   f"Please refund the {a} I paid for the {p}; it was never delivered and I "
                   "gave up waiting."],
    }
    return r.choice(options[label])


def sentiment_text(r: random.Random, label: str) -> str:
    p, c = r.choice(PRODUCTS), r.choice(COMPANIES)
    options = {
        "positive": [f"Absolutely love this {p}. Works perfectly and looks great. Would buy "
                     "again.",
                     f"Fast delivery from {c} and the {p} is even better than described.",
                     f"Five stars: the {p} is sturdy, well made and worth every penny.",
                     f"Great customer service at {c}; they solved my issue in minutes."],
        "negative": [f"The {p} broke after three days. Very disappointed, avoid.",
                     f"Terrible experience with {c}: late delivery and nobody answers emails.",
                     f"The {p} feels cheap and stopped working within a week. Waste of money.",
                     f"I regret buying this {p}; it is noisy and the finish is already "
                     "peeling."],
        "neutral": [f"The {p} arrived on the expected date. It does what the description says.",
                    f"Bought the {p} from {c}. It is the size listed and comes in a plain box.",
                    f"The {p} is available in grey and blue; I picked grey.",
                    f"Order placed with {c} on Monday, delivered Thursday, as stated."],
    }
    return r.choice(options[label])


def urgency_text(r: random.Random, label: str) -> str:
    app = r.choice(APPS)
    options = {
        "low": [f"When you have a moment, could you tell me if {app} supports dark mode?",
                "No rush: I would like to know whether you plan a Linux version next year.",
                "Just a suggestion for a future release: a keyboard shortcut for search.",
                "Small typo on your pricing page: 'monthy' should be 'monthly'."],
        "normal": [f"My {app} export to CSV puts dates in the wrong format. Can you help?",
                   "I would like to update the billing address on our account this week.",
                   f"The {app} notifications arrive a few minutes late on my phone.",
                   "Could you resend last month's invoice? I cannot find it."],
        "high": [f"Since this morning none of our team can sign in to {app}; we have a client "
                 "deadline tomorrow.",
                 f"{app} lost the last two days of edits on our shared project.",
                 "Payments from our shop fail for about half of customers since noon.",
                 f"Our {app} integration stopped sending orders to the warehouse today."],
        "urgent": [f"{app} is completely down for our whole company and we are losing sales "
                   "every minute. Please escalate immediately.",
                   "We see a data breach alert: customer records may be exposed right now.",
                   "Production is down: every checkout fails and the site shows error 500.",
                   "Our payment terminal charges customers repeatedly right now; stop it "
                   "immediately."],
    }
    return r.choice(options[label])


GREETINGS = ["", "Hi, ", "Hello team, ", "Good morning. ", "Hey there, "]
SIGN_OFFS = ["", " Thanks.", " Thank you, {name}.", " Regards, {name}", " Cheers, {first}"]


def wrapped(r: random.Random, text: str) -> str:
    """A greeting and a sign-off around the message, as real messages carry."""
    name = person(r)
    sign = r.choice(SIGN_OFFS).format(name=name, first=name.split()[0])
    return f"{r.choice(GREETINGS)}{text}{sign}"


def classify_items(r: random.Random, n: int, start: int) -> list[dict[str, Any]]:
    sets = [(SUPPORT, support_text), (SENTIMENT, sentiment_text), (URGENCY, urgency_text)]
    items: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i in range(n):
        labels, make = sets[i % 3]
        gold = labels[(i // 3) % len(labels)]
        text = wrapped(r, make(r, gold))
        while text in seen:
            text = wrapped(r, make(r, gold))
        seen.add(text)
        items.append({"id": f"cg{start + i:03d}", "text": text, "labels": labels, "gold": gold})
    return items


# --- extract --------------------------------------------------------------------------------

def _schema(fields: dict[str, str]) -> dict[str, Any]:
    return {"type": "object", "properties": {k: {"type": t} for k, t in fields.items()},
            "required": list(fields), "additionalProperties": False}


def extract_case(r: random.Random, i: int) -> tuple[str, dict[str, Any], dict[str, Any]]:
    kind = i % 4
    if kind == 0:
        inv, c, a, cur = f"INV-{r.randint(10000, 99999)}", r.choice(COMPANIES), amount(r), \
            r.choice(CURRENCIES)
        text = r.choice([f"Invoice {inv} from {c}. Amount due: {a:.2f} {cur}, payable within 30 "
                         "days.",
                         f"{c} has issued invoice {inv} for {a:.2f} {cur}. Please pay by the "
                         "end of the month.",
                         f"Reminder: {inv} ({c}) is still open; total {a:.2f} {cur}."])
        gold: dict[str, Any] = {"invoice_number": inv, "vendor": c, "total": a, "currency": cur}
        return text, _schema({"invoice_number": "string", "vendor": "string", "total": "number",
                              "currency": "string"}), gold
    if kind == 1:
        o, p, q = order_id(r), r.choice(PRODUCTS), r.randint(1, 9)
        text = r.choice([f"Thanks for your order {o}: {q} x {p}, shipping in two business days.",
                         f"Order {o} confirmed. You bought {q} x {p}.",
                         f"We received order {o} for {q} x {p} and are packing it now."])
        return text, _schema({"order_id": "string", "product": "string", "quantity": "integer"}), \
            {"order_id": o, "product": p, "quantity": q}
    if kind == 2:
        name = person(r)
        first, last = name.split()
        email = f"{first.lower()}.{last.lower()}@{r.choice(['example.com', 'mail.test'])}"
        phone = f"+44 20 {r.randint(1000, 9999)} {r.randint(1000, 9999)}"
        text = r.choice([f"Please contact {name} at {email} or call {phone}.",
                         f"New lead: {name}, phone {phone}, email {email}.",
                         f"You can reach our account manager {name} on {phone} ({email})."])
        return text, _schema({"name": "string", "email": "string", "phone": "string"}), \
            {"name": name, "email": email, "phone": phone}
    tracking = f"{r.choice(['CX', 'PJ', 'SP', 'NF'])}-{r.randint(10000, 99999)}-{r.randint(1, 9)}"
    carrier, when = r.choice(CARRIERS), day(r)
    text = r.choice([f"Your parcel ships with {carrier}, tracking number {tracking}, expected "
                     f"on {when}.",
                     f"Tracking {tracking}: {carrier} will deliver on {when}.",
                     f"Good news! {carrier} picked up your order. Track it with {tracking}; "
                     f"delivery {when}."])
    return text, _schema({"tracking_number": "string", "carrier": "string",
                          "delivery_date": "string"}), \
        {"tracking_number": tracking, "carrier": carrier, "delivery_date": when}


def extract_items(r: random.Random, n: int, start: int) -> list[dict[str, Any]]:
    items = []
    for i in range(n):
        text, schema, gold = extract_case(r, i)
        items.append({"id": f"eg{start + i:03d}", "text": text, "schema": schema, "gold": gold})
    return items


# --- summarize ------------------------------------------------------------------------------

def summary_case(r: random.Random, i: int) -> tuple[str, str, list[str]]:
    kind = i % 3
    if kind == 0:
        name, o, p, a = person(r), r.randint(1000, 9999), r.choice(PRODUCTS), r.randint(20, 900)
        text = (f"Customer {name} wrote in because order {o} arrived with a damaged {p}. "
                f"They attached photos of the box and the item. Our agent confirmed the courier "
                f"had dropped the parcel and approved a full refund of ${a}. {name.split()[0]} "
                "said they would reorder once new stock arrives.")
        return text, (f"Order {o} arrived with a damaged {p}, so {name} got a full ${a} "
                      "refund."), [f"order {o}", f"damaged {p}", "full refund", f"${a}"]
    if kind == 1:
        c, city, jobs, month = r.choice(COMPANIES), r.choice(
            ["Leeds", "Porto", "Lyon", "Graz", "Utrecht", "Cork"]), r.randint(20, 400), \
            r.choice(MONTHS)
        text = (f"{c} announced on Tuesday that it will open a new warehouse in {city} in "
                f"{month}. The site will create {jobs} jobs over two years. The company said "
                "online orders grew faster than expected last year. Local officials welcomed "
                "the news.")
        return text, f"{c} will open a {city} warehouse in {month}, creating {jobs} jobs.", \
            [f"warehouse in {city}", f"{jobs} jobs", f"open in {month}"]
    app, hours, cause = r.choice(APPS), r.randint(2, 9), r.choice(
        ["a failed database upgrade", "an expired certificate", "a faulty network switch"])
    text = (f"On Friday {app} was unavailable for {hours} hours. The outage was caused by "
            f"{cause}. Engineers rolled back the change and service returned in the evening. "
            "The team promised a full incident report next week.")
    return text, f"{app} was down for {hours} hours because of {cause}.", \
        [f"{hours} hours", cause, "incident report"]


def summarize_items(r: random.Random, n: int, start: int) -> list[dict[str, Any]]:
    items = []
    for i in range(n):
        text, ref, facts = summary_case(r, i)
        items.append({"id": f"sg{start + i:03d}", "text": text, "reference": ref,
                      "key_facts": facts})
    return items


# --- qa -------------------------------------------------------------------------------------

def qa_case(r: random.Random, i: int) -> tuple[str, str, list[str]]:
    kind = i % 4
    if kind == 0:
        c, days = r.choice(COMPANIES), r.choice([14, 21, 30, 45, 60])
        return (f"Returns at {c} are accepted within {days} days of delivery. Items must be "
                "unused and in their original packaging. Refunds go to the original payment "
                "method.", "Within how many days of delivery are returns accepted?",
                [f"{days} days", str(days)])
    if kind == 1:
        carrier, tracking = r.choice(CARRIERS), f"TR-{r.randint(10000, 99999)}"
        return (f"Your parcel has been shipped with {carrier}. The tracking number is "
                f"{tracking}. Delivery is expected on {day(r)}.",
                r.choice(["Which carrier is delivering the parcel?", "Who delivers the parcel?"]),
                [carrier])
    if kind == 2:
        name, role, c = person(r), r.choice(["Head of Design", "Chief Financial Officer",
                                             "VP of Engineering", "Support Lead"]), \
            r.choice(COMPANIES)
        return (f"{name} will start as the new {role} at {c} on {day(r)}. {name.split()[0]} "
                "previously worked in retail for ten years.",
                f"Who is the new {role}?", [name, name.split()[1]])
    app, price = r.choice(APPS), r.choice([5, 8, 12, 15, 20, 25])
    return (f"The {app} Pro plan costs ${price} per user per month. Annual billing saves two "
            "months. Every plan includes email support.",
            f"How much does the {app} Pro plan cost per user per month?",
            [f"${price}", f"{price} dollars", str(price)])


def qa_items(r: random.Random, n: int, start: int) -> list[dict[str, Any]]:
    items = []
    for i in range(n):
        context, question, answers = qa_case(r, i)
        items.append({"id": f"qg{start + i:03d}", "context": context, "question": question,
                      "answers": answers})
    return items


# --- product gold sets ----------------------------------------------------------------------

TRIAGE_URGENCY = {"billing": "normal", "shipping": "normal", "technical": "normal",
                  "account": "normal", "refund": "normal"}
SUBJECTS = {"billing": ["Charged twice", "Wrong invoice", "Price went up"],
            "shipping": ["Where is my parcel?", "Delivery late", "Wrong address"],
            "technical": ["App crashes", "Error on export", "Sync stuck"],
            "account": ["Password reset", "Change my email", "Account locked"],
            "refund": ["Refund not received", "Refund for broken item", "Cancelled order"]}


def triage_gold(r: random.Random, n: int, start: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        category = SUPPORT[i % len(SUPPORT)]
        urgent = i % 7 == 3
        body = support_text(r, category)
        if urgent:
            body += " This blocks our whole team today, please treat it as urgent."
        tier = r.choice(["free", "pro", "enterprise", None])
        item: dict[str, Any] = {"subject": r.choice(SUBJECTS[category]), "body": body}
        if tier:
            item["customer_tier"] = tier
        out.append({"product": "ticket-triage", "id": f"tg{start + i}", "input": item,
                    "gold": {"category": category,
                             "urgency": "urgent" if urgent else TRIAGE_URGENCY[category]}})
    return out


def summary_gold(r: random.Random, n: int, start: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        paragraphs, facts = [], []
        for j in range(3):
            text, _ref, kf = summary_case(r, i + j)
            paragraphs.append(text)
            facts.append(kf[0])
        out.append({"product": "doc-summary", "id": f"dg{start + i}",
                    "input": {"text": "\n\n".join(paragraphs), "target_words": 80},
                    "gold": {"key_facts": facts}})
    return out


def extract_gold(r: random.Random, n: int, start: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        text, schema, gold = extract_case(r, i)
        out.append({"product": "extract", "id": f"xg{start + i}",
                    "input": {"text": text, "schema": schema}, "gold": gold})
    return out


def _read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _write(path: Path, items: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items))


def _generated(item: dict[str, Any]) -> bool:
    return str(item["id"])[1] == "g" or str(item["id"])[:2] in {"tg", "dg", "xg"}


def main() -> None:
    makers = {"classify": classify_items, "extract": extract_items,
              "summarize": summarize_items, "qa": qa_items}
    for kind, make in makers.items():
        path = SUITES / f"{kind}.jsonl"
        written = [i for i in _read(path) if not _generated(i)]
        r = random.Random(f"modelyard-{kind}")
        _write(path, written + make(r, PER_KIND - len(written), 1))
    gold = [i for i in _read(GOLD) if not _generated(i)]
    gold_makers = {"ticket-triage": triage_gold, "doc-summary": summary_gold,
                   "extract": extract_gold}
    out = []
    for product, make in gold_makers.items():
        mine = [i for i in gold if i["product"] == product]
        out += mine + make(random.Random(f"modelyard-{product}"), PER_PRODUCT - len(mine), 1)
    _write(GOLD, out)


if __name__ == "__main__":
    main()
