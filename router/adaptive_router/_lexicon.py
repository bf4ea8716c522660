"""Hand-written cue words for the complexity dimensions, in English, Spanish, French, German
and Portuguese.

Every entry is a lower-case token as the scorer's tokenizer produces it (punctuation becomes a
space, accents are kept). The value is the cue's strength inside its dimension: 1.0 is a strong
cue, 0.5 a weak one. The learned model on top weighs the dimensions; these lists only need to
say which words belong where, so they stay readable and language-neutral.
"""

from __future__ import annotations

REASONING: dict[str, float] = {
    # English
    "prove": 1.0, "proof": 1.0, "proofs": 1.0, "derive": 1.0, "derivation": 1.0,
    "justify": 0.8, "reasoning": 0.8, "rigorous": 1.0, "rigorously": 1.0, "step": 0.7,
    "analyze": 0.7, "analyse": 0.7, "analysis": 0.6, "compare": 0.6, "contrast": 0.6,
    "evaluate": 0.6, "critique": 0.6, "demonstrate": 0.7, "theorem": 0.8, "lemma": 1.0,
    "implications": 0.6, "tradeoffs": 0.8, "trade": 0.4, "optimize": 0.6, "optimise": 0.6,
    "design": 0.5, "architecture": 0.6, "strategy": 0.5, "hypothesis": 0.7, "why": 0.3,
    "deduce": 0.8, "infer": 0.6, "estimate": 0.6, "assumptions": 0.6, "counterexample": 1.0,
    "contradiction": 0.8, "induction": 0.8, "formally": 0.8, "thoroughly": 0.5,
    # Spanish
    "demuestra": 1.0, "demostrar": 1.0, "demostración": 1.0, "deriva": 0.8, "derivar": 0.8,
    "justifica": 0.8, "justificar": 0.8, "paso": 0.7, "razona": 0.8, "razonamiento": 0.8,
    "analiza": 0.7, "analizar": 0.7, "análisis": 0.6, "compara": 0.6, "comparar": 0.6,
    "evalúa": 0.6, "evaluar": 0.6, "diseña": 0.5, "teorema": 0.8, "estima": 0.6,
    "riguroso": 1.0, "rigurosa": 1.0,
    # French
    "prouve": 1.0, "prouver": 1.0, "démontre": 1.0, "démontrer": 1.0, "démonstration": 1.0,
    "dérive": 0.8, "dériver": 0.8, "justifie": 0.8, "justifier": 0.8, "étape": 0.7,
    "étapes": 0.7, "raisonnement": 0.8, "analyser": 0.7, "analyse": 0.7, "comparer": 0.6,
    "compare": 0.6, "évalue": 0.6, "évaluer": 0.6, "conçois": 0.5, "théorème": 0.8,
    "rigoureuse": 1.0, "rigoureux": 1.0, "pourquoi": 0.3,
    # German
    "beweise": 1.0, "beweisen": 1.0, "beweis": 1.0, "herleiten": 1.0, "leite": 0.8,
    "begründe": 0.8, "begründen": 0.8, "schritt": 0.7, "schrittweise": 0.8,
    "analysiere": 0.7, "analysieren": 0.7, "vergleiche": 0.6, "vergleichen": 0.6,
    "bewerte": 0.6, "bewerten": 0.6, "entwirf": 0.5, "satz": 0.3, "schätze": 0.6,
    "warum": 0.3, "streng": 0.6,
    # Portuguese
    "provar": 1.0, "prova": 0.8, "demonstre": 1.0, "demonstrar": 1.0, "demonstração": 1.0,
    "derivar": 0.8, "justifique": 0.8, "passo": 0.7, "raciocínio": 0.8, "analise": 0.7,
    "analisar": 0.7, "análise": 0.6, "avalie": 0.6, "avaliar": 0.6, "projete": 0.5,
    "rigorosa": 1.0, "rigoroso": 1.0, "estime": 0.6, "porquê": 0.3,
}

MATH: dict[str, float] = {
    # English
    "equation": 1.0, "equations": 1.0, "solve": 0.8, "integer": 1.0, "integers": 1.0,
    "prime": 0.8, "primes": 0.8, "polynomial": 1.0, "derivative": 1.0, "integral": 1.0,
    "matrix": 0.8, "probability": 1.0, "remainder": 1.0, "digits": 0.7, "divisible": 1.0,
    "factorial": 1.0, "sequence": 0.5, "series": 0.4, "limit": 0.4, "triangle": 0.8,
    "area": 0.5, "perimeter": 0.8, "radius": 0.8, "circle": 0.5, "angle": 0.7,
    "vector": 0.6, "modulo": 1.0, "mod": 0.6, "calculate": 0.7, "compute": 0.6,
    "percent": 0.6, "ratio": 0.7, "average": 0.5, "sum": 0.5, "product": 0.3,
    "minimum": 0.5, "maximum": 0.5, "real": 0.3, "roots": 0.8, "root": 0.5, "sqrt": 1.0,
    "log": 0.5, "sin": 0.6, "cos": 0.6, "tan": 0.5, "fraction": 0.7, "cents": 0.5,
    "total": 0.4, "many": 0.4, "much": 0.3, "each": 0.3, "twice": 0.6, "half": 0.5,
    "per": 0.4, "cost": 0.3, "costs": 0.4, "hours": 0.3, "minutes": 0.3, "miles": 0.4,
    "polygon": 0.8, "angles": 0.6, "interior": 0.4, "sides": 0.4, "degrees": 0.4,
    "hypotenuse": 1.0, "diagonal": 0.6, "formula": 0.6, "expected": 0.5, "variance": 0.8, "geometric": 0.8, "arithmetic": 0.6, "eigenvalues": 1.0,
    # Spanish
    "ecuación": 1.0, "ecuaciones": 1.0, "resuelve": 0.8, "resolver": 0.7, "entero": 1.0,
    "enteros": 1.0, "primo": 0.8, "polinomio": 1.0, "derivada": 1.0, "matriz": 0.8,
    "probabilidad": 1.0, "suma": 0.5, "calcula": 0.7, "calcular": 0.7, "cuántos": 0.6,
    "cuántas": 0.6, "cuánto": 0.5, "primos": 0.8, "números": 0.4, "triángulo": 0.8, "raíz": 0.8, "residuo": 1.0,
    # French
    "équation": 1.0, "équations": 1.0, "résous": 0.8, "résoudre": 0.7, "entier": 1.0,
    "entiers": 1.0, "polynôme": 1.0, "dérivée": 1.0, "intégrale": 1.0, "matrice": 0.8,
    "probabilité": 1.0, "somme": 0.5, "calcule": 0.7, "calculer": 0.7, "combien": 0.6,
    "racine": 0.8, "reste": 0.4, "premiers": 0.6, "nombres": 0.4,
    # German
    "gleichung": 1.0, "gleichungen": 1.0, "löse": 0.8, "lösen": 0.7, "ganzzahl": 1.0,
    "ganze": 0.6, "primzahl": 1.0, "polynom": 1.0, "ableitung": 1.0, "wahrscheinlichkeit": 1.0,
    "summe": 0.5, "berechne": 0.7, "berechnen": 0.7, "viele": 0.4, "dreieck": 0.8,
    "wurzel": 0.8, "rest": 0.4, "primzahlen": 1.0,
    # Portuguese
    "equação": 1.0, "equações": 1.0, "resolva": 0.8, "inteiro": 1.0, "inteiros": 1.0,
    "polinômio": 1.0, "probabilidade": 1.0, "soma": 0.5, "calcule": 0.7,
    "quantos": 0.6, "quantas": 0.6, "triângulo": 0.8, "raiz": 0.8,
}

CODE: dict[str, float] = {
    "def": 1.0, "return": 0.8, "class": 0.5, "function": 0.7, "import": 0.8, "const": 0.8,
    "var": 0.5, "public": 0.5, "private": 0.5, "static": 0.6, "void": 1.0, "int": 0.7,
    "null": 0.6, "none": 0.2, "async": 0.8, "await": 0.8, "lambda": 0.8, "struct": 0.8,
    "include": 0.2, "printf": 1.0, "println": 1.0, "console": 0.6, "sql": 0.8, "regex": 0.8,
    "api": 0.5, "python": 0.8, "java": 0.8, "javascript": 0.8, "typescript": 0.8, "rust": 0.6,
    "golang": 0.8, "bash": 0.6, "script": 0.6, "code": 0.7, "implement": 0.8,
    "implementation": 0.7, "algorithm": 0.8, "debug": 1.0, "bug": 0.8, "compile": 0.8,
    "compiler": 0.8, "exception": 0.8, "traceback": 1.0, "stack": 0.5, "runtime": 0.6,
    "segfault": 1.0, "refactor": 0.8, "self": 0.5, "nullptr": 1.0, "vector": 0.3,
    "array": 0.6, "nums": 0.8, "boolean": 0.6, "bool": 0.7, "str": 0.6, "elif": 1.0,
    "else": 0.6, "while": 0.2, "for": 0.1, "endl": 1.0, "std": 0.8, "cout": 1.0,
    "dataframe": 0.8, "pandas": 0.8, "numpy": 0.8, "docker": 0.5, "kubernetes": 0.5,
    "html": 0.5, "css": 0.5, "json": 0.3, "query": 0.4, "database": 0.4, "server": 0.3,
    "thread": 0.5, "concurrency": 0.8, "recursion": 0.8, "recursive": 0.8, "linked": 0.5,
    "node": 0.4, "tree": 0.3, "graph": 0.4, "complexity": 0.5,
    # Spanish / French / German / Portuguese
    "código": 0.7, "implementa": 0.8, "implementar": 0.8, "función": 0.7, "depura": 1.0,
    "programa": 0.5, "algoritmo": 0.8, "implémente": 0.8, "implémenter": 0.8,
    "fonction": 0.7, "programme": 0.7, "programm": 0.7, "débogue": 1.0, "déboguer": 1.0, "algorithme": 0.8,
    "implementiere": 0.8, "implementieren": 0.8, "funktion": 0.7, "algorithmus": 0.8,
    "programmiere": 0.8, "implemente": 0.8, "função": 0.7, "depure": 1.0,
}

CONSTRAINT: dict[str, float] = {
    # English
    "must": 0.8, "exactly": 1.0, "least": 0.8, "most": 0.3, "include": 0.5, "without": 0.5,
    "avoid": 0.6, "only": 0.4, "format": 0.5, "words": 0.6, "sentences": 0.7,
    "paragraphs": 0.8, "bullet": 0.7, "sections": 0.7, "highlight": 0.8, "highlighted": 0.8,
    "wrap": 0.8, "wrapped": 0.8, "lowercase": 1.0, "uppercase": 1.0, "capital": 0.3,
    "capitalized": 0.8, "markdown": 0.6, "title": 0.5, "postscript": 0.8, "ensure": 0.5,
    "requirements": 0.6, "constraints": 0.8, "constraint": 0.8, "letters": 0.6,
    "times": 0.3, "refrain": 1.0, "entire": 0.5, "placeholders": 1.0, "separated": 0.6,
    "keywords": 0.6, "end": 0.2, "finish": 0.4,
    # Spanish
    "debe": 0.8, "exactamente": 1.0, "menos": 0.6, "máximo": 0.6, "incluye": 0.5,
    "incluir": 0.5, "sin": 0.4, "evita": 0.6, "formato": 0.5, "palabras": 0.6,
    "oraciones": 0.7, "párrafos": 0.8, "minúsculas": 1.0, "mayúsculas": 1.0,
    # French
    "doit": 0.8, "exactement": 1.0, "moins": 0.5, "inclure": 0.5,
    "inclus": 0.5, "sans": 0.4, "évite": 0.6, "mots": 0.6, "paragraphes": 0.8,
    "minuscules": 1.0, "majuscules": 1.0,
    # German
    "muss": 0.8, "genau": 0.8, "mindestens": 1.0, "höchstens": 1.0, "enthalte": 0.6,
    "ohne": 0.4, "vermeide": 0.6, "wörter": 0.6, "sätze": 0.7, "absätze": 0.8,
    "kleinbuchstaben": 1.0, "großbuchstaben": 1.0,
    # Portuguese
    "deve": 0.8, "exatamente": 1.0, "inclua": 0.5, "sem": 0.4, "evite": 0.6,
    "palavras": 0.6, "frases": 0.5, "parágrafos": 0.8,
}

NEGATION: dict[str, float] = {
    "not": 1.0, "no": 0.6, "never": 1.0, "none": 0.6, "nothing": 0.8, "neither": 1.0,
    "nor": 1.0, "without": 0.8, "don": 1.0, "doesn": 1.0, "isn": 1.0, "aren": 1.0,
    "can": 0.0, "cannot": 1.0, "won": 0.5, "except": 1.0, "unless": 1.0, "didn": 1.0,
    "nunca": 1.0, "ninguno": 1.0, "ninguna": 1.0, "ni": 0.8, "excepto": 1.0,
    "ne": 0.6, "pas": 0.8, "jamais": 1.0, "aucun": 1.0, "aucune": 1.0, "sauf": 1.0,
    "nicht": 1.0, "kein": 1.0, "keine": 1.0, "nie": 1.0, "niemals": 1.0, "weder": 1.0,
    "außer": 1.0, "não": 1.0, "nenhum": 1.0, "nenhuma": 1.0, "nem": 0.8, "exceto": 1.0,
}

# Cues that the task is small whatever else the text holds: chit-chat, look-ups, rewrites.
SIMPLE: dict[str, float] = {
    # English
    "hi": 1.0, "hello": 1.0, "hey": 1.0, "thanks": 1.0, "thank": 0.8, "joke": 1.0,
    "translate": 1.0, "summarize": 1.0, "summarise": 1.0, "summary": 0.8, "rewrite": 1.0,
    "rephrase": 1.0, "paraphrase": 1.0, "proofread": 1.0, "classify": 0.8,
    "categorize": 0.8, "define": 0.8, "definition": 0.8, "meaning": 0.6, "synonym": 1.0,
    "synonyms": 1.0, "who": 0.5, "when": 0.3, "where": 0.5, "favorite": 0.8,
    "favourite": 0.8, "weather": 1.0, "email": 0.6, "brief": 0.6, "briefly": 0.6,
    "list": 0.4, "name": 0.3, "tweet": 0.8, "slogan": 0.8, "poem": 0.3, "story": 0.3,
    "tl": 0.6, "dr": 0.3, "grammar": 0.8, "spelling": 0.8, "bye": 1.0, "morning": 0.6,
    "you": 0.2, "your": 0.2, "feel": 0.6, "love": 0.4, "sad": 0.6, "bored": 0.8,
    # Spanish
    "hola": 1.0, "gracias": 1.0, "traduce": 1.0, "traducir": 1.0, "resume": 0.8,
    "resumir": 1.0, "resumen": 0.8, "reescribe": 1.0, "clasifica": 0.8,
    "quién": 0.5, "cuándo": 0.3, "dónde": 0.5, "chiste": 1.0, "correo": 0.6,
    # French
    "bonjour": 1.0, "salut": 1.0, "merci": 1.0, "traduis": 1.0, "traduire": 1.0,
    "résume": 1.0, "résumer": 1.0, "résumé": 0.8, "réécris": 1.0, "classe": 0.3,
    "définis": 0.8, "qui": 0.3, "quand": 0.3, "où": 0.5, "blague": 1.0, "courriel": 0.6,
    # German
    "hallo": 1.0, "danke": 1.0, "übersetze": 1.0, "übersetzen": 1.0, "fasse": 1.0,
    "zusammen": 0.6, "zusammenfassung": 1.0, "umschreiben": 1.0, "formuliere": 0.8,
    "definiere": 0.8, "wer": 0.5, "wann": 0.3, "wo": 0.5, "witz": 1.0,
    # Portuguese
    "olá": 1.0, "oi": 1.0, "obrigado": 1.0, "obrigada": 1.0, "traduza": 1.0,
    "resuma": 1.0, "resumo": 0.8, "reescreva": 1.0, "classifique": 0.8, "defina": 0.8,
    "quem": 0.5, "quando": 0.3, "onde": 0.5, "piada": 1.0,
}

# Phrases that tokens alone miss. Checked as plain substrings of the lower-cased window.
STEP_PHRASES: tuple[str, ...] = (
    "step by step", "step-by-step", "paso a paso", "étape par étape", "schritt für schritt",
    "passo a passo",
)
REASONING_PHRASES: tuple[str, ...] = (
    "show that", "explain why", "pros and cons", "prove that", "what if",
)
MATH_PHRASES: tuple[str, ...] = (
    "how many", "how much", "what is the value", "find the", "wie viele", "how long",
)

# Scripts written without spaces between words (Chinese, Japanese) and Cyrillic stems: matched as
# substrings, only when the text is not plain ASCII.
NON_LATIN_REASONING: tuple[str, ...] = ("证明", "證明", "推导", "定理", "为什么", "分析", "доказ", "объясн", "証明")
NON_LATIN_MATH: tuple[str, ...] = (
    "计算", "計算", "方程", "求解", "公倍数", "公约数", "概率", "函数", "整数",
    "вычисл", "уравнен", "сколько", "реши", "интеграл",
)
NON_LATIN_CODE: tuple[str, ...] = ("代码", "程序", "算法", "函数", "код", "программ", "コード")
