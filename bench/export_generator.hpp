// Deterministic synthetic Telegram Desktop exports (whole-account result.json)
// and the matching replywatch configuration, shared by gen_export and replay_bench.
#pragma once

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace replywatch::bench {

// ---------------------------------------------------------------------------------------------
// Randomness: xoshiro256** seeded through splitmix64. Small, fast, and the same stream on every
// platform, which std::mt19937 plus std::*_distribution would not give (distributions are
// implementation-defined).

class Rng {
 public:
  explicit Rng(std::uint64_t seed) {
    for (auto& s : s_) {
      seed += 0x9E3779B97F4A7C15ull;
      std::uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      s = z ^ (z >> 31);
    }
  }

  std::uint64_t next() {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  /// [0, 1)
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  std::uint64_t below(std::uint64_t n) { return n == 0 ? 0 : next() % n; }
  bool chance(double p) { return uniform() < p; }
  double exponential(double mean) { return -mean * std::log1p(-uniform()); }
  double normal() {
    // Box–Muller; 1 − u keeps the logarithm's argument in (0, 1].
    const double u = 1.0 - uniform();
    const double v = uniform();
    return std::sqrt(-2.0 * std::log(u)) * std::cos(6.283185307179586 * v);
  }
  template <class T, std::size_t N>
  const T& pick(const std::array<T, N>& items) {
    return items[below(N)];
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::array<std::uint64_t, 4> s_{};
};

inline std::uint64_t hash64(std::uint64_t x) {
  x ^= x >> 33;
  x *= 0xFF51AFD7ED558CCDull;
  x ^= x >> 33;
  x *= 0xC4CEB9FE1A85EC53ull;
  return x ^ (x >> 33);
}

// ---------------------------------------------------------------------------------------------
// Vocabulary. Every string is already valid JSON string content (escapes included), so the
// writer copies bytes without scanning them.

namespace vocab {

using S = std::string_view;

inline constexpr std::array<S, 40> kFirstNames = {
    "Айгерим", "Марат",    "Ольга",   "Дмитрий", "Асель",   "Ерлан",   "Наталья", "Сергей",
    "Динара",  "Тимур",    "Елена",   "Алексей", "Жанна",   "Нурлан",  "Ирина",   "Андрей",
    "Гульнара", "Бауыржан", "Татьяна", "Максим",  "Салтанат", "Руслан", "Светлана", "Игорь",
    "Камила",  "Арман",    "Юлия",    "Павел",   "Мадина",  "Данияр",  "Анна",    "Виктор",
    "Алия",    "Ержан",    "Мария",   "Олег",    "Айдана",  "Кайрат",  "Людмила", "Евгений"};
inline constexpr std::array<S, 32> kLastNames = {
    "Сейткали", "Иванова",  "Ахметов",  "Петров",   "Нурланова", "Смирнов", "Абенова",
    "Ким",      "Жумабеков", "Кузнецова", "Омарова", "Попов",     "Исаев",   "Тулегенова",
    "Волкова",  "Сапаров",  "Морозов",  "Касымова", "Лебедев",   "Мукашев", "Новикова",
    "Байжанов", "Фёдорова", "Есенова",  "Соколов",  "Рахимова",  "Павлова", "Ибраев",
    "Орлова",   "Шарипов",  "Цой",      "Белова"};
inline constexpr std::array<S, 12> kLatinNames = {
    "Dmitry K.", "aigerim_99", "Olga", "Marat B", "Alex", "Nurlan", "Kate 🌸", "Timur",
    "Elena S.",  "🐾 Dana",    "Sergey", "Asel A."};

inline constexpr std::array<S, 18> kOpeners = {
    "Здравствуйте!",
    "Добрый день.",
    "Добрый вечер!",
    "Уважаемый аким,",
    "Уважаемые сотрудники,",
    "Здравствуйте, прошу помочь.",
    "Доброе утро.",
    "Прошу обратить внимание!",
    "Обращаюсь уже не в первый раз.",
    "Жители дома просят помощи.",
    "Добрый день, у меня вопрос.",
    "Извините за беспокойство.",
    "Пишу от имени соседей.",
    "Помогите, пожалуйста!",
    "Здравствуйте, вопрос по записи.",
    "Скажите, пожалуйста,",
    "Люди, кто знает?",
    "Снова проблема."};
inline constexpr std::array<S, 40> kProblems = {
    "Во дворе дома по улице Абая, 52 уже третью неделю не вывозят мусор, контейнеры "
    "переполнены.",
    "С утра нет горячей воды во всём микрорайоне, в КСК трубку не берут.",
    "На перекрёстке Сатпаева и Розыбакиева не работает светофор, дети ходят в школу.",
    "Возле остановки «Университет» огромная яма, машины объезжают по тротуару.",
    "В подъезде второй месяц не горит свет, пожилые соседи боятся выходить вечером.",
    "Автобус № 92 не ходит по расписанию, ждали сорок минут на морозе.",
    "Подала документы на пособие ещё в январе, статус до сих пор «на рассмотрении».",
    "Детская площадка во дворе сломана: качели висят на одной цепи.",
    "Уличные фонари на проспекте горят днём и не горят ночью.",
    "Не могу записаться на приём: на сайте нет свободных слотов уже месяц.",
    "Соседи сверху затапливают, управляющая компания не реагирует на заявки.",
    "Лифт в доме 14 по улице Жандосова стоит с прошлой пятницы.",
    "Под окнами круглосуточно работает стройка, шум даже ночью.",
    "В поликлинике № 5 невозможно дозвониться в регистратуру.",
    "Тротуар на улице Толе би не чистят от снега, люди падают.",
    "Бродячие собаки возле школы № 34, родители боятся за детей.",
    "Счёт за отопление пришёл в два раза больше, чем в прошлом месяце.",
    "Нужна справка для консульского учёта, но запись закрыта до мая.",
    "Паспорт подан на продление в феврале, когда можно будет забрать?",
    "Во дворе сломали забор и паркуются прямо на газоне.",
    "Из крана течёт ржавая вода, фото прикладываю.",
    "Канализационный люк открыт на углу Гоголя и Наурызбай батыра.",
    "Сколько ещё будет перекрыта дорога на Аль-Фараби? Пробки по два часа.",
    "Почему отключили газ без предупреждения? В квартире холодно.",
    "Пандус у входа в ЦОН слишком крутой, на коляске не заехать.",
    "На нашей улице второй год обещают асфальт, но ничего не делают.",
    "Вывеска магазина закрывает окна жилого дома, просим проверить разрешение.",
    "В парке сломаны скамейки и нет урн, мусор разносит ветер.",
    "Ребёнка не берут в садик по направлению, говорят, мест нет.",
    "Отопление в школе не работает, дети сидят в куртках.",
    "Очередь на льготное жильё не двигается уже три года, номер тот же.",
    "Электронная очередь в ЦОНе зависла, талоны не выдают.",
    "На Рыскулова ночью гоняют машины без глушителей, спать невозможно.",
    "Квитанция за воду пришла на чужую фамилию, как исправить?",
    "На остановке нет навеса, пожилые люди стоят под дождём.",
    "Дерево упало на провода после ветра, света нет с ночи.",
    "Сосед держит на балконе голубей, всё в помёте, просим принять меры.",
    "Ремонт подъезда оплатили в прошлом году, работы так и не начались.",
    "В автобусах не работают валидаторы, контролёры штрафуют.",
    "Подскажите, какие документы нужны для регистрации ребёнка по месту жительства?"};
inline constexpr std::array<S, 16> kClosers = {
    "Спасибо заранее.",
    "Когда будет решение?",
    "Просим принять меры.",
    "Жду ответа.",
    "Сколько можно ждать?",
    "Помогите, пожалуйста.",
    "Очень надеемся на вашу помощь!",
    "Заявку в 109 подавали, номер 48213.",
    "Это уже третье обращение.",
    "Прошу ответить в личку или здесь.",
    "Благодарю.",
    "Фото есть, могу прислать.",
    "\\nС уважением, жители дома.",
    "Кто-нибудь прочитает это?",
    "Ответьте хоть что-нибудь 🙏",
    "Пожалуйста, не игнорируйте."};
inline constexpr std::array<S, 20> kChatter = {
    "У нас та же проблема, на соседней улице тоже.",
    "Поддерживаю! Сами мучаемся уже месяц.",
    "Звоните в 109, там хотя бы регистрируют заявку.",
    "Вчера приезжали, но так ничего и не сделали.",
    "Напишите в личку, дам номер мастера.",
    "Это не к ним, это к управляющей компании.",
    "+1, у нас во дворе то же самое.",
    "Бесполезно писать, никто не отвечает 😕",
    "А вы заявку через eOtinish подавали?",
    "У нас починили за два дня, попробуйте позвонить ещё раз.",
    "Спасибо, что подняли вопрос!",
    "Видел утром, там уже работает бригада.",
    "Это уже обсуждали в прошлом посте.",
    "Согласна, ситуация ужасная.",
    "Надо коллективное обращение писать.",
    "Тоже жду ответа с прошлой недели.",
    "Можно подробнее, какой адрес?",
    "Там ремонт до конца месяца, объявление висело.",
    "Правильно, пусть ответят публично.",
    "Не разводите флуд, пишите по делу."};
inline constexpr std::array<S, 20> kAnswers = {
    "Здравствуйте! Ваше обращение принято в работу.",
    "Добрый день! Информация передана в коммунальную службу района.",
    "Заявка зарегистрирована, срок исполнения — три рабочих дня.",
    "Бригада выедет на место сегодня до 18:00.",
    "Благодарим за обращение, вопрос находится на контроле.",
    "По данным управляющей компании, работы завершат до конца недели.",
    "Просим уточнить точный адрес в личных сообщениях.",
    "Ремонт включён в план текущего года, подрядчик определён.",
    "Проверка проведена, нарушитель привлечён к ответственности.",
    "Запись на приём откроется в понедельник в 09:00.",
    "Документы готовы, их можно получить в окне № 3.",
    "Перерасчёт будет произведён в следующем месяце.",
    "Ваш вопрос направлен в управление пассажирского транспорта.",
    "Подача воды восстановлена, приносим извинения за неудобства.",
    "Специалисты выехали на место, ожидайте.",
    "Информацию уточняем и ответим дополнительно.",
    "Направили запрос в отдел образования района.",
    "Сотрудники полиции проинформированы.",
    "Для оформления нужны удостоверение личности и справка с места жительства.",
    "Заявление рассмотрено, решение направлено вам на электронную почту."};
inline constexpr std::array<S, 8> kAnswerClosers = {
    "С уважением, пресс-служба.",
    "Спасибо за терпение.",
    "Контакт для связи: 109.",
    "Если вопрос не решится, сообщите нам.",
    "Хорошего дня!",
    "Приносим извинения за задержку ответа.",
    "Ваше обращение № 2026-0412.",
    "\\nОтвет подготовлен отделом ЖКХ."};
inline constexpr std::array<S, 14> kPosts = {
    "📢 Уважаемые жители! С 10 марта начинается капитальный ремонт дорог в Алмалинском районе.",
    "Внимание: плановое отключение горячей воды с 09:00 до 18:00 по следующим адресам.",
    "Итоги недели: отремонтировано 27 дворов, установлено 140 новых фонарей.",
    "Приём граждан руководством пройдёт в четверг с 15:00 в здании администрации.",
    "Напоминаем: обращения принимаются также через портал eOtinish и по номеру 109.",
    "🚧 Перекрытие движения на участке улицы Сатпаева до 25 марта.",
    "Стартовал приём заявок на благоустройство дворов на следующий год.",
    "Сегодня в 11:00 прямой эфир с ответами на вопросы жителей.",
    "График работы ЦОНов в праздничные дни опубликован на сайте.",
    "Вакцинация против гриппа проводится во всех поликлиниках города бесплатно.",
    "Консульский приём в пятницу отменён по техническим причинам.",
    "Открыта запись на летние лагеря для школьников.",
    "Уважаемые граждане! Новый порядок записи на получение паспорта.",
    "❗️ Штормовое предупреждение: порывы ветра до 25 м/с."};
inline constexpr std::array<S, 10> kPostTails = {
    "Подробности по ссылке.",
    "Приносим извинения за временные неудобства.",
    "Вопросы можно задать в комментариях.",
    "Следите за обновлениями.",
    "\\n\\nСхема объезда ниже.",
    "Берегите себя и близких.",
    "Спасибо за понимание!",
    "Ответим на все вопросы в течение дня.",
    "Список адресов будет дополнен.",
    "\\nКонтакт-центр: 109."};
inline constexpr std::array<S, 8> kBotLines = {
    "⚠️ Сообщение содержит ссылку и будет удалено через 5 минут.",
    "Добро пожаловать в чат! Пожалуйста, ознакомьтесь с правилами.",
    "Пользователь получил предупреждение (1/3): флуд.",
    "Напоминаем: реклама в чате запрещена.",
    "Ваше сообщение отправлено на модерацию.",
    "Правила чата закреплены в шапке группы.",
    "Пожалуйста, пишите обращения одним сообщением.",
    "Антиспам: подозрительная активность, сообщение скрыто."};
inline constexpr std::array<S, 10> kBold = {
    "СРОЧНО", "уже 3 недели", "ул. Абая, 52", "не работает", "дети",
    "повторно", "до 18:00", "важно", "просим ответить", "Внимание"};
inline constexpr std::array<S, 8> kHashtags = {"#ремонт", "#ЖКХ",      "#дороги", "#транспорт",
                                               "#вода",   "#отопление", "#мусор",  "#обращение"};
inline constexpr std::array<S, 6> kPhones = {"+7 727 271 66 66", "+7 701 555 12 34",
                                             "8 800 080 7777",   "+49 30 2061 0",
                                             "+7 717 274 10 10", "109"};
inline constexpr std::array<S, 5> kLinks = {
    "https://eotinish.kz/ru/appeal/48213", "https://www.gov.kz/memleket/entities/almaty",
    "https://t.me/c/1800004444/1532",      "https://example.org/news/2026/03/remont",
    "https://2gis.kz/almaty/geo/9430047375"};
inline constexpr std::array<S, 5> kMentions = {"@akimat_press", "@gov_kz", "@edds_help",
                                               "@konsul_berlin", "@meriya_kg"};
inline constexpr std::array<S, 4> kTextLinkWords = {"здесь", "по ссылке", "на сайте", "форма"};
inline constexpr std::array<S, 6> kStickers = {"👍", "😡", "🙏", "😂", "👏", "🤦‍♂️"};

}  // namespace vocab

// ---------------------------------------------------------------------------------------------
// Agencies. Each template is a plausible public body; its calendar mixes split shifts, a shift
// past midnight and holidays so that business-time code has work to do.

struct OfficialTemplate {
  std::string_view name;
  std::string_view role;
  std::string_view branch;  // empty: none
  double weight;            // share of this agency's answers
};

struct AgencyTemplate {
  std::string_view id;
  std::string_view name;
  std::string_view short_name;
  std::string_view timezone;
  int approx_offset_minutes;  // only shapes simulated reply times; the config names the zone
  std::array<std::string_view, 7> hours;  // flow lists per day, Monday first; empty: closed
  std::array<std::string_view, 2> holidays;
  std::int64_t target_business_secs;
  double answer_rate;         // share of waits an official ever answers
  double median_reply_secs;   // of the log-normal reply delay
  std::array<OfficialTemplate, 5> officials;
  std::array<std::string_view, 3> chat_topics;
};

inline constexpr std::array<AgencyTemplate, 5> kAgencies = {{
    {"akimat_almaty",
     "Акимат города Алматы",
     "Акимат Алматы",
     "Asia/Almaty",
     300,
     {"[\"09:00-13:00\", \"14:00-18:30\"]", "[\"09:00-13:00\", \"14:00-18:30\"]",
      "[\"09:00-13:00\", \"14:00-18:30\"]", "[\"09:00-13:00\", \"14:00-18:30\"]",
      "[\"09:00-13:00\", \"14:00-18:00\"]", "[\"10:00-14:00\"]", ""},
     {"2026-03-09", "2026-03-23"},
     10800,
     0.82,
     50 * 60,
     {{{"Ерлан Досаев (аким)", "chairman", "", 0.05},
       {"Пресс-служба акимата", "press_office", "", 0.50},
       {"Асель Нурланова", "deputy", "", 0.10},
       {"Алмалинский район | приёмная", "regional_director", "almaly", 0.20},
       {"Бостандыкский район | приёмная", "regional_director", "bostandyk", 0.15}}},
     {"обращения жителей", "Алмалинский район", "Бостандыкский район"}},
    {"consulate_berlin",
     "Консульский отдел в Берлине",
     "Консульство Берлин",
     "Europe/Berlin",
     60,
     {"[\"08:30-12:30\", \"14:00-17:00\"]", "[\"08:30-12:30\", \"14:00-17:00\"]",
      "[\"08:30-12:30\", \"14:00-17:00\"]", "[\"08:30-12:30\", \"14:00-17:00\"]",
      "[\"08:30-13:00\"]", "", ""},
     {"2026-04-03", "2026-04-06"},
     28800,
     0.60,
     6 * 3600,
     {{{"Консул Р. Сапаров", "chairman", "", 0.10},
       {"Консульский отдел", "press_office", "", 0.60},
       {"Визовая служба", "deputy", "visa", 0.15},
       {"Паспортный стол", "regional_director", "passports", 0.10},
       {"Дежурный сотрудник", "regional_director", "duty", 0.05}}},
     {"вопросы и ответы", "паспорта и визы", "консульский учёт"}},
    {"edds_astana",
     "ЕДДС города Астаны",
     "ЕДДС Астана",
     "Asia/Almaty",
     300,
     {"[\"08:00-20:00\", \"21:00-03:00\"]", "[\"08:00-20:00\", \"21:00-03:00\"]",
      "[\"08:00-20:00\", \"21:00-03:00\"]", "[\"08:00-20:00\", \"21:00-03:00\"]",
      "[\"08:00-20:00\", \"21:00-03:00\"]", "[\"08:00-20:00\"]", "[\"08:00-20:00\"]"},
     {"2026-03-22", "2026-05-01"},
     3600,
     0.90,
     15 * 60,
     {{{"Диспетчер ЕДДС", "press_office", "", 0.55},
       {"Начальник смены", "deputy", "", 0.15},
       {"Руководитель ЕДДС", "chairman", "", 0.05},
       {"Район Есиль | диспетчер", "regional_director", "esil", 0.15},
       {"Район Сарыарка | диспетчер", "regional_director", "saryarka", 0.10}}},
     {"аварийные заявки", "район Есиль", "район Сарыарка"}},
    {"health_mosobl",
     "Управление здравоохранения области",
     "Облздрав",
     "Europe/Moscow",
     180,
     {"[\"09:00-13:00\", \"13:45-18:00\"]", "[\"09:00-13:00\", \"13:45-18:00\"]",
      "[\"09:00-13:00\", \"13:45-18:00\"]", "[\"09:00-13:00\", \"13:45-18:00\"]",
      "[\"09:00-13:00\", \"13:45-16:45\"]", "", ""},
     {"2026-05-01", "2026-05-11"},
     14400,
     0.70,
     150 * 60,
     {{{"Министр здравоохранения", "chairman", "", 0.03},
       {"Пресс-центр облздрава", "press_office", "", 0.57},
       {"Горячая линия", "deputy", "", 0.20},
       {"Поликлиники севера", "regional_director", "north", 0.12},
       {"Поликлиники юга", "regional_director", "south", 0.08}}},
     {"вопросы пациентов", "поликлиники севера", "поликлиники юга"}},
    {"mayor_bishkek",
     "Мэрия города Бишкек",
     "Мэрия Бишкека",
     "Asia/Bishkek",
     360,
     {"[\"08:00-12:00\", \"13:00-17:00\"]", "[\"08:00-12:00\", \"13:00-17:00\"]",
      "[\"08:00-12:00\", \"13:00-17:00\"]", "[\"08:00-12:00\", \"13:00-17:00\"]",
      "[\"08:00-12:00\", \"13:00-17:00\"]", "", ""},
     {"2026-03-08", "2026-03-21"},
     21600,
     0.55,
     9 * 3600,
     {{{"Мэр города", "chairman", "", 0.02},
       {"Пресс-служба мэрии", "press_office", "", 0.58},
       {"Вице-мэр по ЖКХ", "deputy", "", 0.15},
       {"Первомайский район", "regional_director", "pervomaisky", 0.15},
       {"Октябрьский район", "regional_director", "oktyabrsky", 0.10}}},
     {"обращения горожан", "Первомайский район", "Октябрьский район"}},
}};

// ---------------------------------------------------------------------------------------------

struct GeneratorOptions {
  std::uint64_t messages = 300;
  std::uint32_t chats = 2;
  std::uint32_t agencies = 0;  // 0: half the chats, rounded up, at most 8
  std::uint32_t files = 1;     // >1: chats split over DIR/export-N/result.json
  std::uint64_t seed = 1;
  std::uint32_t days = 0;                    // 0: from the message count
  std::int64_t start_unixtime = 1772323200;  // 2026-03-01T00:00:00Z
  int export_offset_minutes = 300;           // the exporting machine's zone, for `date`
  std::string out_dir;
  std::string config_out;  // empty: no configuration
};

struct GeneratorReport {
  std::uint64_t messages = 0;
  std::uint64_t bytes = 0;
  std::uint64_t answers = 0;  // official replies to citizens
  std::vector<std::string> files;
  std::string error;  // non-empty: failed
};

namespace detail {

/// simdjson (and so the export parser) takes documents of at most this many bytes.
inline constexpr std::uint64_t kSimdjsonMaxBytes = 0xFFFFFFFFull;

inline constexpr std::string_view kNotIncluded =
    "(File not included. Change data exporting settings to download.)";

struct ChatPlan {
  std::uint32_t index = 0;
  std::uint32_t agency = 0;  // index into the run's agencies
  std::uint64_t messages = 0;
  std::int64_t bare_id = 0;
  std::int64_t channel_bare_id = 0;
  std::string name;
  std::string channel_name;
};

struct AgencyPlan {
  const AgencyTemplate* tmpl = nullptr;
  std::string id;  // template id, suffixed when templates repeat
  std::int64_t official_base = 0;
};

inline std::int64_t official_user_id(const AgencyPlan& a, std::size_t k) {
  return a.official_base + static_cast<std::int64_t>(k) * 7;
}

inline constexpr std::int64_t kBotUserId = 6100000001;
inline constexpr std::string_view kBotName = "Антиспам | модератор";

/// Output with one large buffer: a message is written with a few dozen memcpy calls and no
/// allocation; the kernel sees a write every few megabytes.
class Out {
 public:
  explicit Out(std::FILE* file) : file_(file), buf_(new char[kCapacity]) {}
  Out(const Out&) = delete;
  Out& operator=(const Out&) = delete;
  ~Out() { flush(); }

  void put(std::string_view s) {
    if (size_ + s.size() > kCapacity) {
      flush();
      if (s.size() > kCapacity) {
        write_through(s);
        return;
      }
    }
    std::memcpy(buf_.get() + size_, s.data(), s.size());
    size_ += s.size();
  }
  void put(char c) {
    if (size_ == kCapacity) flush();
    buf_[size_++] = c;
  }
  void num(std::int64_t v) {
    char tmp[24];
    const auto r = std::to_chars(tmp, tmp + sizeof tmp, v);
    put(std::string_view(tmp, static_cast<std::size_t>(r.ptr - tmp)));
  }
  /// ",\n" + indent + "\"key\": "
  void key(int depth, std::string_view k) {
    put(",\n");
    indent(depth);
    put('"');
    put(k);
    put("\": ");
  }
  /// The first key of an object: no comma.
  void first_key(int depth, std::string_view k) {
    put('\n');
    indent(depth);
    put('"');
    put(k);
    put("\": ");
  }
  void indent(int depth) { put(std::string_view(kSpaces, static_cast<std::size_t>(depth))); }
  void str(std::string_view escaped) {
    put('"');
    put(escaped);
    put('"');
  }

  void flush() {
    if (size_ == 0) return;
    write_through(std::string_view(buf_.get(), size_));
    size_ = 0;
  }
  std::uint64_t written() const { return written_ + size_; }
  bool failed() const { return failed_; }

 private:
  static constexpr std::size_t kCapacity = 8u << 20;
  static constexpr const char* kSpaces = "                ";

  void write_through(std::string_view s) {
    if (std::fwrite(s.data(), 1, s.size(), file_) != s.size()) failed_ = true;
    written_ += s.size();
  }

  std::FILE* file_;
  std::unique_ptr<char[]> buf_;
  std::size_t size_ = 0;
  std::uint64_t written_ = 0;
  bool failed_ = false;
};

enum class Entity : std::uint8_t { plain, bold, italic, mention, hashtag, phone, link, text_link };

inline std::string_view entity_name(Entity e) {
  switch (e) {
    case Entity::plain:
      return "plain";
    case Entity::bold:
      return "bold";
    case Entity::italic:
      return "italic";
    case Entity::mention:
      return "mention";
    case Entity::hashtag:
      return "hashtag";
    case Entity::phone:
      return "phone";
    case Entity::link:
      return "link";
    case Entity::text_link:
      return "text_link";
  }
  return "plain";
}

/// A message text as parts; plain parts are joined by spaces, entities become objects.
/// Exports write `text` as an array exactly when there is an entity.
struct Text {
  struct Part {
    Entity kind;
    std::string_view text;
  };
  std::array<Part, 20> parts{};
  std::size_t count = 0;
  std::size_t bytes = 0;
  bool has_entity = false;

  bool full() const { return count == parts.size(); }
  void add(Entity kind, std::string_view s) {
    if (full()) return;
    // Two entities in a row would need a plain separator; keep one.
    if (kind != Entity::plain && count > 0 && parts[count - 1].kind != Entity::plain) return;
    parts[count++] = {kind, s};
    bytes += s.size() + 1;
    has_entity |= kind != Entity::plain;
  }
};

enum class Role : std::uint8_t { appeal, followup, chatter, answer, addendum, post, own_post };

inline void compose(Rng& rng, Role role, Text& t) {
  t.count = 0;
  t.bytes = 0;
  t.has_entity = false;
  // Most texts land in 150–300 bytes (Cyrillic is two bytes a letter); a tenth are short.
  const std::size_t target = rng.chance(0.1) ? 20 + rng.below(60) : 150 + rng.below(151);
  const bool rich = rng.chance(role == Role::post ? 0.7 : 0.3);
  auto maybe_entity = [&](double p) {
    if (!rich || !rng.chance(p)) return;
    switch (rng.below(7)) {
      case 0:
      case 1:
        t.add(Entity::bold, rng.pick(vocab::kBold));
        break;
      case 2:
        t.add(Entity::hashtag, rng.pick(vocab::kHashtags));
        break;
      case 3:
        t.add(Entity::phone, rng.pick(vocab::kPhones));
        break;
      case 4:
        t.add(Entity::link, rng.pick(vocab::kLinks));
        break;
      case 5:
        t.add(Entity::text_link, rng.pick(vocab::kTextLinkWords));
        break;
      default:
        t.add(Entity::italic, rng.pick(vocab::kBold));
        break;
    }
  };
  switch (role) {
    case Role::appeal:
    case Role::followup:
      if (role == Role::appeal || rng.chance(0.3)) {
        t.add(Entity::plain, rng.pick(vocab::kOpeners));
      }
      // A phrase is 60–150 bytes: stop when the next one would overshoot the target.
      do {
        maybe_entity(0.35);
        t.add(Entity::plain, rng.pick(vocab::kProblems));
      } while (t.bytes + 90 < target && !t.full());
      if (t.bytes + 30 < target) t.add(Entity::plain, rng.pick(vocab::kClosers));
      break;
    case Role::chatter:
      t.add(Entity::plain, rng.pick(vocab::kChatter));
      while (t.bytes < target / 2 && !t.full()) {
        maybe_entity(0.3);
        t.add(Entity::plain, rng.pick(vocab::kChatter));
      }
      break;
    case Role::answer:
    case Role::addendum:
      do {
        maybe_entity(0.3);
        t.add(Entity::plain, rng.pick(vocab::kAnswers));
      } while (t.bytes + 70 < target && !t.full());
      if (t.bytes + 30 < target) t.add(Entity::plain, rng.pick(vocab::kAnswerClosers));
      break;
    case Role::post:
    case Role::own_post:
      if (rich && rng.chance(0.5)) t.add(Entity::bold, rng.pick(vocab::kBold));
      do {
        t.add(Entity::plain, rng.pick(vocab::kPosts));
        maybe_entity(0.5);
      } while (t.bytes + 120 < target && !t.full());
      if (t.bytes + 30 < target) t.add(Entity::plain, rng.pick(vocab::kPostTails));
      if (rich && rng.chance(0.4)) t.add(Entity::mention, rng.pick(vocab::kMentions));
      break;
  }
}

/// A plain run parts[from, to): phrases joined by spaces, with a space towards each
/// neighbouring entity so the visible text reads naturally.
inline void put_run(Out& out, const Text& t, std::size_t from, std::size_t to) {
  if (from > 0) out.put(' ');
  for (std::size_t i = from; i < to; ++i) {
    if (i > from) out.put(' ');
    out.put(t.parts[i].text);
  }
  if (to < t.count) out.put(' ');
}

inline void put_part_object(Out& out, int depth, Entity kind, std::string_view text,
                            const Text* runs, std::size_t from, std::size_t to) {
  out.put('{');
  out.first_key(depth + 1, "type");
  out.str(entity_name(kind));
  out.key(depth + 1, "text");
  out.put('"');
  if (runs) {
    put_run(out, *runs, from, to);
  } else {
    out.put(text);
  }
  out.put('"');
  if (kind == Entity::text_link) {
    out.key(depth + 1, "href");
    out.str("https://eotinish.kz/ru");
  }
  out.put('\n');
  out.indent(depth);
  out.put('}');
}

/// Writes "text" and "text_entities" (the message's last two fields) at `depth`.
inline void put_text(Out& out, int depth, const Text& t) {
  if (t.count == 0) {
    out.key(depth, "text");
    out.put("\"\"");
    out.key(depth, "text_entities");
    out.put("[]");
    return;
  }
  if (!t.has_entity) {
    out.key(depth, "text");
    out.put('"');
    put_run(out, t, 0, t.count);
    out.put('"');
    out.key(depth, "text_entities");
    out.put("[\n");
    out.indent(depth + 1);
    put_part_object(out, depth + 1, Entity::plain, {}, &t, 0, t.count);
    out.put('\n');
    out.indent(depth);
    out.put(']');
    return;
  }
  for (int pass = 0; pass < 2; ++pass) {
    const bool entities = pass == 1;
    out.key(depth, entities ? "text_entities" : "text");
    out.put('[');
    bool first = true;
    for (std::size_t i = 0; i < t.count;) {
      out.put(first ? "\n" : ",\n");
      first = false;
      out.indent(depth + 1);
      if (t.parts[i].kind != Entity::plain) {
        put_part_object(out, depth + 1, t.parts[i].kind, t.parts[i].text, nullptr, 0, 0);
        ++i;
        continue;
      }
      std::size_t j = i;
      while (j < t.count && t.parts[j].kind == Entity::plain) ++j;
      if (entities) {
        put_part_object(out, depth + 1, Entity::plain, {}, &t, i, j);
      } else {
        out.put('"');
        put_run(out, t, i, j);
        out.put('"');
      }
      i = j;
    }
    out.put('\n');
    out.indent(depth);
    out.put(']');
  }
}

/// "YYYY-MM-DDTHH:MM:SS" for local seconds; the date part is cached per day, since messages
/// come in time order.
class DateFormatter {
 public:
  std::string_view format(std::int64_t local_seconds) {
    const std::int64_t day = floor_div(local_seconds, 86400);
    if (day != day_) {
      day_ = day;
      const std::chrono::year_month_day ymd{std::chrono::sys_days{std::chrono::days{day}}};
      two(buf_ + 2, static_cast<int>(ymd.year()) % 100);
      two(buf_, static_cast<int>(ymd.year()) / 100);
      two(buf_ + 5, static_cast<int>(static_cast<unsigned>(ymd.month())));
      two(buf_ + 8, static_cast<int>(static_cast<unsigned>(ymd.day())));
    }
    const auto sod = static_cast<int>(local_seconds - day * 86400);
    two(buf_ + 11, sod / 3600);
    two(buf_ + 14, sod / 60 % 60);
    two(buf_ + 17, sod % 60);
    return {buf_, 19};
  }

  static std::int64_t floor_div(std::int64_t a, std::int64_t b) {
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
  }

 private:
  static void two(char* p, int v) {
    p[0] = static_cast<char>('0' + v / 10);
    p[1] = static_cast<char>('0' + v % 10);
  }
  std::int64_t day_ = INT64_MIN;
  char buf_[20] = "0000-00-00T00:00:00";
};

/// Relative activity of citizens by local hour: quiet nights, busy late mornings.
inline constexpr std::array<double, 24> kActivity = {
    0.15, 0.08, 0.05, 0.04, 0.04, 0.08, 0.20, 0.45, 0.75, 0.95, 1.00, 1.00,
    0.95, 0.90, 0.90, 0.90, 0.85, 0.85, 0.80, 0.80, 0.75, 0.60, 0.40, 0.25};

struct PendingReply {
  std::int64_t time;
  std::int64_t target;   // message replied to
  std::uint32_t citizen;  // whose wait this closes
  Role role;             // answer, or an official's addendum to its own answer
  friend bool operator>(const PendingReply& a, const PendingReply& b) { return a.time > b.time; }
};

/// One chat, written message by message. Citizens, the linked channel, officials, a
/// moderation bot and service messages interleave; official replies are scheduled when an
/// appeal is written and emitted when the clock reaches them.
class ChatWriter {
 public:
  ChatWriter(const GeneratorOptions& options, const ChatPlan& chat,
             const std::vector<AgencyPlan>& agencies, Out& out)
      : opt_(options),
        chat_(chat),
        agency_(agencies[chat.agency]),
        foreign_(agencies.size() > 1 ? &agencies[(chat.agency + 1) % agencies.size()] : nullptr),
        out_(out),
        rng_(hash64(options.seed * 0x100000001B3ull + chat.index + 1)) {
    // A pool of about one citizen per twelve messages: thousands in a big chat, a handful
    // of very active ones and a long tail.
    citizens_ = static_cast<std::uint32_t>(
        std::clamp<std::uint64_t>(chat.messages / 12, 20, 4'000'000));
    last_message_.assign(citizens_, 0);
    last_answer_.assign(citizens_, 0);
    pending_.assign(citizens_, 0);
    heap_.reserve(1 << 12);
    double weights = 0;
    for (const auto& o : agency_.tmpl->officials) weights += o.weight;
    official_weight_total_ = weights;
  }

  /// Writes the chat object (without a trailing comma) and returns the messages written.
  std::uint64_t write(std::int64_t span_secs) {
    const int d = 4;
    out_.put('{');
    out_.first_key(d, "name");
    out_.str(chat_.name);
    out_.key(d, "type");
    out_.str("public_supergroup");
    out_.key(d, "id");
    out_.num(chat_.bare_id);
    out_.key(d, "messages");
    out_.put('[');
    // Official replies take a share of the chat that grows with the answer rate (fitted on
    // generated chats); the rest is organic traffic spread over the span.
    const double reply_share =
        std::clamp(0.185 + 0.86 * (agency_.tmpl->answer_rate - 0.6), 0.1, 0.5);
    const double organic = static_cast<double>(chat_.messages) * (1.0 - reply_share);
    const double mean_activity = 0.5725;  // of kActivity
    peak_gap_ = organic > 0 ? static_cast<double>(span_secs) * mean_activity / organic : 1.0;
    clock_ = opt_.start_unixtime + static_cast<std::int64_t>(rng_.below(1800));
    std::int64_t next_organic = advance(clock_);
    while (written_ < chat_.messages) {
      if (!heap_.empty() && heap_.front().time <= next_organic) {
        std::pop_heap(heap_.begin(), heap_.end(), std::greater<>{});
        const PendingReply r = heap_.back();
        heap_.pop_back();
        clock_ = std::max(clock_, r.time);
        emit_reply(r);
      } else {
        clock_ = next_organic;
        emit_organic();
        next_organic = advance(clock_);
      }
    }
    out_.put(written_ ? "\n    ]" : "]");
    out_.put("\n   }");
    return written_;
  }

  std::uint64_t answers() const { return answers_; }

 private:
  // ---- time

  std::int64_t local_hour(std::int64_t t, int offset_minutes) const {
    const std::int64_t local = t + offset_minutes * 60;
    return DateFormatter::floor_div(local, 3600) % 24;
  }

  /// Next organic arrival: a Poisson stream thinned by the hour-of-day activity curve.
  std::int64_t advance(std::int64_t from) {
    double t = static_cast<double>(from);
    for (;;) {
      t += rng_.exponential(peak_gap_);
      const auto hour =
          local_hour(static_cast<std::int64_t>(t), agency_.tmpl->approx_offset_minutes);
      if (rng_.uniform() < kActivity[static_cast<std::size_t>(hour)]) break;
    }
    return std::max(from, static_cast<std::int64_t>(t));
  }

  /// Log-normal delay, then mostly pushed into office hours: staff answer in the morning
  /// what came in at night or on the weekend.
  std::int64_t reply_time(std::int64_t from) {
    const double delay =
        std::max(30.0, agency_.tmpl->median_reply_secs * std::exp(1.5 * rng_.normal()));
    std::int64_t t = from + static_cast<std::int64_t>(std::min(delay, 40.0 * 86400));
    const int off = agency_.tmpl->approx_offset_minutes;
    const std::int64_t local = t + off * 60;
    const std::int64_t day = DateFormatter::floor_div(local, 86400);
    const std::int64_t hour = (local - day * 86400) / 3600;
    const std::int64_t weekday = ((day + 3) % 7 + 7) % 7;  // 0 = Monday
    std::int64_t shift_days = -1;
    if (weekday >= 5 && rng_.chance(0.6)) {
      shift_days = 7 - weekday;
    } else if ((hour < 8 || hour >= 20) && rng_.chance(0.75)) {
      shift_days = hour >= 20 ? 1 : 0;
    }
    if (shift_days >= 0) {
      const std::int64_t morning = (day + shift_days) * 86400 + 9 * 3600 - off * 60;
      t = std::max(t, morning + static_cast<std::int64_t>(rng_.exponential(2400)));
    }
    return t;
  }

  // ---- message pieces

  std::int64_t take_id() {
    // Deleted messages leave holes in the id sequence; remember one so some replies point
    // at a parent the export no longer has.
    if (rng_.chance(0.02)) {
      const auto gap = static_cast<std::int64_t>(1 + rng_.below(4));
      deleted_id_ = next_id_;
      next_id_ += gap;
    }
    return next_id_++;
  }

  void begin(std::int64_t id, std::string_view type, std::int64_t time) {
    out_.put(written_ ? ",\n     {" : "\n     {");
    out_.first_key(6, "id");
    out_.num(id);
    out_.key(6, "type");
    out_.str(type);
    put_time("date", "date_unixtime", time);
    ++written_;
  }

  void put_time(std::string_view date_key, std::string_view unix_key, std::int64_t time) {
    out_.key(6, date_key);
    out_.str(dates_.format(time + opt_.export_offset_minutes * 60));
    out_.key(6, unix_key);
    out_.put('"');
    out_.num(time);
    out_.put('"');
  }

  void maybe_edited(std::int64_t time, double p) {
    if (!rng_.chance(p)) return;
    // The edit date is written with its own cached day; a separate formatter keeps the
    // message-date cache warm.
    const std::int64_t edited = time + 30 + static_cast<std::int64_t>(rng_.exponential(900));
    out_.key(6, "edited");
    out_.str(edit_dates_.format(edited + opt_.export_offset_minutes * 60));
    out_.key(6, "edited_unixtime");
    out_.put('"');
    out_.num(edited);
    out_.put('"');
  }

  std::int64_t citizen_user_id(std::uint32_t c) const {
    // Older accounts have 9-digit ids, newer ones exceed 32 bits.
    const std::int64_t base = c % 5 == 0 ? 7000000000 : 200000000;
    return base + static_cast<std::int64_t>(chat_.index) * 50'000'000 +
           static_cast<std::int64_t>(c) * 3 + 1;
  }

  void put_citizen_name(std::uint32_t c) {
    const std::uint64_t h = hash64(static_cast<std::uint64_t>(citizen_user_id(c)));
    switch (h % 20) {
      case 0:
        out_.put("null");  // deleted account
        return;
      case 1:
      case 2:
        out_.str(vocab::kLatinNames[(h >> 8) % vocab::kLatinNames.size()]);
        return;
      default:
        break;
    }
    out_.put('"');
    out_.put(vocab::kFirstNames[(h >> 8) % vocab::kFirstNames.size()]);
    if (h % 20 < 12) {
      out_.put(' ');
      out_.put(vocab::kLastNames[(h >> 16) % vocab::kLastNames.size()]);
    }
    out_.put('"');
  }

  void put_user_author(std::int64_t user_id) {
    out_.key(6, "from_id");
    out_.put("\"user");
    out_.num(user_id);
    out_.put('"');
  }

  void put_channel_author(std::string_view name, std::int64_t bare) {
    out_.key(6, "from");
    out_.str(name);
    out_.key(6, "from_id");
    out_.put("\"channel");
    out_.num(bare);
    out_.put('"');
  }

  void put_reply_to(std::int64_t id) {
    if (id == 0) return;
    out_.key(6, "reply_to_message_id");
    out_.num(id);
  }

  void end() { out_.put("\n     }"); }

  // ---- organic messages

  std::uint32_t pick_citizen() {
    // Skewed: u^3 puts most messages on the first few percent of the pool.
    const double u = rng_.uniform();
    return static_cast<std::uint32_t>(static_cast<double>(citizens_) * u * u * u);
  }

  void emit_organic() {
    const double r = rng_.uniform();
    if (r < 0.015 || last_post_ == 0) return emit_channel_post();
    if (r < 0.027) return emit_service();
    if (r < 0.033) return emit_bot();
    if (r < 0.037) return emit_own_post();
    if (r < 0.040 && foreign_) return emit_foreign_official();
    emit_citizen();
  }

  void emit_channel_post() {
    const std::int64_t id = take_id();
    begin(id, "message", clock_);
    put_channel_author(chat_.channel_name, chat_.channel_bare_id);
    if (rng_.chance(0.3)) {
      out_.key(6, "author");
      out_.str(agency_.tmpl->officials[1].name);
    }
    out_.key(6, "forwarded_from");
    out_.str(chat_.channel_name);
    if (rng_.chance(0.25)) {
      out_.key(6, "photo");
      out_.str(kNotIncluded);
      out_.key(6, "width");
      out_.num(1280);
      out_.key(6, "height");
      out_.num(853);
    }
    compose(rng_, Role::post, text_);
    put_text(out_, 6, text_);
    end();
    posts_[post_head_++ % posts_.size()] = id;
    last_post_ = id;
  }

  void emit_service() {
    const std::int64_t id = take_id();
    const double r = rng_.uniform();
    begin(id, "service", clock_);
    if (r < 0.9 || last_post_ == 0) {
      const std::uint32_t c = static_cast<std::uint32_t>(rng_.below(citizens_));
      out_.key(6, "actor");
      put_citizen_name(c);
      out_.key(6, "actor_id");
      out_.put("\"user");
      out_.num(citizen_user_id(c));
      out_.put('"');
      if (r < 0.7) {
        out_.key(6, "action");
        out_.str("join_group_by_link");
        out_.key(6, "inviter");
        out_.str(chat_.name);
      } else {
        out_.key(6, "action");
        out_.str("invite_members");
        out_.key(6, "members");
        out_.put("[\n");
        out_.indent(7);
        put_citizen_name(static_cast<std::uint32_t>(rng_.below(citizens_)));
        out_.put('\n');
        out_.indent(6);
        out_.put(']');
      }
    } else {
      const std::size_t k = pick_official();
      out_.key(6, "actor");
      out_.str(agency_.tmpl->officials[k].name);
      out_.key(6, "actor_id");
      out_.put("\"user");
      out_.num(official_user_id(agency_, k));
      out_.put('"');
      out_.key(6, "action");
      out_.str("pin_message");
      out_.key(6, "message_id");
      out_.num(last_post_);
    }
    out_.key(6, "text");
    out_.put("\"\"");
    out_.key(6, "text_entities");
    out_.put("[]");
    end();
  }

  void emit_bot() {
    const std::int64_t id = take_id();
    begin(id, "message", clock_);
    out_.key(6, "from");
    out_.str(kBotName);
    put_user_author(kBotUserId);
    put_reply_to(recent_citizen_message());
    compose_bot();
    put_text(out_, 6, text_);
    end();
  }

  void compose_bot() {
    text_.count = 0;
    text_.bytes = 0;
    text_.has_entity = false;
    text_.add(Entity::plain, rng_.pick(vocab::kBotLines));
  }

  std::int64_t recent_citizen_message() {
    const std::size_t filled = std::min<std::size_t>(recent_head_, recent_.size());
    if (filled == 0) return 0;
    return recent_[(recent_head_ - 1 - rng_.below(filled)) % recent_.size()].id;
  }

  void emit_own_post() {
    // An official posting news in the group, or commenting under the channel post: neither
    // replies to a citizen, so neither answers anything.
    const std::int64_t id = take_id();
    const std::size_t k = pick_official();
    begin(id, "message", clock_);
    maybe_edited(clock_, 0.1);
    out_.key(6, "from");
    out_.str(agency_.tmpl->officials[k].name);
    put_user_author(official_user_id(agency_, k));
    if (rng_.chance(0.5)) put_reply_to(last_post_);
    compose(rng_, Role::own_post, text_);
    put_text(out_, 6, text_);
    end();
  }

  void emit_foreign_official() {
    // Another agency's official answering here: the pairing must not count it.
    const std::int64_t target = recent_citizen_message();
    if (target == 0) return emit_citizen();
    const std::int64_t id = take_id();
    const std::size_t k = rng_.below(foreign_->tmpl->officials.size());
    begin(id, "message", clock_);
    out_.key(6, "from");
    out_.str(foreign_->tmpl->officials[k].name);
    put_user_author(official_user_id(*foreign_, k));
    put_reply_to(target);
    compose(rng_, Role::answer, text_);
    put_text(out_, 6, text_);
    end();
  }

  void emit_citizen() {
    const std::uint32_t c = pick_citizen();
    std::int64_t reply_to = 0;
    Role role = Role::appeal;
    bool schedules = true;  // a new wait an official may answer
    const double r = rng_.uniform();
    if (r < 0.36) {
      // A comment under one of the latest channel posts, mostly the newest.
      const std::size_t filled = std::min<std::size_t>(post_head_, posts_.size());
      const std::size_t back = rng_.chance(0.7) ? 0 : rng_.below(filled);
      reply_to = posts_[(post_head_ - 1 - back) % posts_.size()];
    } else if (r < 0.54 && last_message_[c] != 0) {
      role = Role::followup;
      reply_to = last_answer_[c] != 0 && rng_.chance(0.5) ? last_answer_[c] : last_message_[c];
    } else if (r < 0.70) {
      reply_to = recent_citizen_message();
      role = Role::chatter;
      schedules = false;
    } else if (r < 0.71 && deleted_id_ != 0) {
      reply_to = deleted_id_;
    }
    const std::int64_t id = take_id();
    begin(id, "message", clock_);
    maybe_edited(clock_, 0.05);
    out_.key(6, "from");
    put_citizen_name(c);
    put_user_author(citizen_user_id(c));
    put_reply_to(reply_to);
    const double media = rng_.uniform();
    if (media < 0.02) {
      // Stickers carry no text.
      out_.key(6, "file");
      out_.str(kNotIncluded);
      out_.key(6, "thumbnail");
      out_.str(kNotIncluded);
      out_.key(6, "media_type");
      out_.str("sticker");
      out_.key(6, "sticker_emoji");
      out_.str(rng_.pick(vocab::kStickers));
      out_.key(6, "width");
      out_.num(512);
      out_.key(6, "height");
      out_.num(512);
      text_.count = 0;
      text_.bytes = 0;
      text_.has_entity = false;
    } else {
      if (media < 0.06) {
        out_.key(6, "photo");
        out_.str(kNotIncluded);
        out_.key(6, "width");
        out_.num(960);
        out_.key(6, "height");
        out_.num(1280);
      }
      compose(rng_, role, text_);
    }
    put_text(out_, 6, text_);
    end();

    recent_[recent_head_++ % recent_.size()] = {id, c};
    last_message_[c] = id;
    if (schedules && !pending_[c] && rng_.chance(agency_.tmpl->answer_rate)) {
      pending_[c] = 1;
      schedule({reply_time(clock_), id, c, Role::answer});
    }
  }

  void schedule(const PendingReply& r) {
    heap_.push_back(r);
    std::push_heap(heap_.begin(), heap_.end(), std::greater<>{});
  }

  std::size_t pick_official() {
    double x = rng_.uniform() * official_weight_total_;
    const auto& officials = agency_.tmpl->officials;
    for (std::size_t k = 0; k < officials.size(); ++k) {
      x -= officials[k].weight;
      if (x < 0) return k;
    }
    return officials.size() - 1;
  }

  void emit_reply(const PendingReply& r) {
    const std::int64_t id = take_id();
    begin(id, "message", clock_);
    maybe_edited(clock_, 0.1);
    const double who = rng_.uniform();
    if (who < 0.10) {
      // Anonymous admin: the group posts as itself.
      put_channel_author(chat_.name, chat_.bare_id);
    } else if (who < 0.16) {
      // An admin writing as the linked channel.
      put_channel_author(chat_.channel_name, chat_.channel_bare_id);
    } else {
      const std::size_t k = pick_official();
      out_.key(6, "from");
      out_.str(agency_.tmpl->officials[k].name);
      put_user_author(official_user_id(agency_, k));
      if (rng_.chance(0.2)) {
        out_.key(6, "author");
        out_.str(agency_.tmpl->officials[k].name);
      }
    }
    put_reply_to(r.target);
    compose(rng_, r.role, text_);
    put_text(out_, 6, text_);
    end();
    if (r.role == Role::answer) {
      ++answers_;
      pending_[r.citizen] = 0;
      last_answer_[r.citizen] = id;
      if (rng_.chance(0.05)) {
        schedule({clock_ + 60 + static_cast<std::int64_t>(rng_.exponential(1200)), id, r.citizen,
                  Role::addendum});
      }
    }
  }

  struct Recent {
    std::int64_t id;
    std::uint32_t citizen;
  };

  const GeneratorOptions& opt_;
  const ChatPlan& chat_;
  const AgencyPlan& agency_;
  const AgencyPlan* foreign_;
  Out& out_;
  Rng rng_;
  DateFormatter dates_, edit_dates_;
  Text text_;
  double peak_gap_ = 1.0;
  double official_weight_total_ = 1.0;
  std::int64_t clock_ = 0;
  std::int64_t next_id_ = 1;
  std::int64_t deleted_id_ = 0;
  std::uint64_t written_ = 0;
  std::uint64_t answers_ = 0;
  std::uint32_t citizens_ = 0;
  std::vector<std::int64_t> last_message_;  // per citizen
  std::vector<std::int64_t> last_answer_;   // per citizen: the official reply to their last wait
  std::vector<std::uint8_t> pending_;       // per citizen: an answer is scheduled
  std::vector<PendingReply> heap_;
  std::array<std::int64_t, 8> posts_{};
  std::size_t post_head_ = 0;
  std::int64_t last_post_ = 0;
  std::array<Recent, 64> recent_{};
  std::size_t recent_head_ = 0;
};

inline std::vector<AgencyPlan> plan_agencies(const GeneratorOptions& o) {
  std::uint32_t n = o.agencies ? o.agencies : std::min<std::uint32_t>((o.chats + 1) / 2, 8);
  n = std::clamp<std::uint32_t>(n, 1, std::max<std::uint32_t>(o.chats, 1));
  std::vector<AgencyPlan> out(n);
  for (std::uint32_t a = 0; a < n; ++a) {
    out[a].tmpl = &kAgencies[a % kAgencies.size()];
    out[a].id = std::string(out[a].tmpl->id);
    if (a >= kAgencies.size()) out[a].id += "_" + std::to_string(a / kAgencies.size() + 1);
    out[a].official_base = 5000000000 + static_cast<std::int64_t>(a) * 1000 + 101;
  }
  return out;
}

inline std::vector<ChatPlan> plan_chats(const GeneratorOptions& o,
                                        const std::vector<AgencyPlan>& agencies) {
  std::vector<ChatPlan> chats(o.chats);
  // Uneven sizes, as in life: weight 1/(i+1)^0.7, shares by largest remainder so the total is
  // exact.
  std::vector<double> w(o.chats);
  double total = 0;
  for (std::uint32_t i = 0; i < o.chats; ++i) total += w[i] = std::pow(i + 1.0, -0.7);
  std::uint64_t assigned = 0;
  std::vector<std::pair<double, std::uint32_t>> rem;
  for (std::uint32_t i = 0; i < o.chats; ++i) {
    const double exact = static_cast<double>(o.messages) * w[i] / total;
    chats[i].messages = static_cast<std::uint64_t>(exact);
    assigned += chats[i].messages;
    rem.push_back({exact - std::floor(exact), i});
  }
  std::stable_sort(rem.begin(), rem.end(), [](const auto& a, const auto& b) {
    return a.first > b.first;
  });
  for (std::size_t k = 0; assigned < o.messages; ++k, ++assigned) {
    ++chats[rem[k % rem.size()].second].messages;
  }
  for (std::uint32_t i = 0; i < o.chats; ++i) {
    ChatPlan& c = chats[i];
    c.index = i;
    c.agency = i % static_cast<std::uint32_t>(agencies.size());
    c.bare_id = 1800004444 + static_cast<std::int64_t>(i) * 1017;
    c.channel_bare_id = 1600002222 + static_cast<std::int64_t>(i) * 1013;
    const AgencyTemplate& t = *agencies[c.agency].tmpl;
    const std::uint32_t round = i / static_cast<std::uint32_t>(agencies.size());
    c.name = std::string(t.short_name) + " — " +
             std::string(t.chat_topics[round % t.chat_topics.size()]);
    if (round >= t.chat_topics.size()) c.name += " " + std::to_string(round + 1);
    c.channel_name = std::string(t.short_name) + " | официальный канал";
    if (round > 0) c.channel_name += " " + std::to_string(round + 1);
  }
  return chats;
}

inline std::int64_t span_secs(const GeneratorOptions& o) {
  // About 40,000 messages a day in all, between a week and four months.
  const std::uint64_t days =
      o.days ? o.days : std::clamp<std::uint64_t>(o.messages / 40'000, 7, 120);
  return static_cast<std::int64_t>(days) * 86400;
}

inline std::string bot_api_id(std::int64_t bare) { return "-100" + std::to_string(bare); }

inline std::string yaml_quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

inline std::string render_config(const GeneratorOptions& o, const std::vector<AgencyPlan>& agencies,
                                 const std::vector<ChatPlan>& chats) {
  static constexpr std::array<std::string_view, 7> kDays = {"mon", "tue", "wed", "thu",
                                                            "fri", "sat", "sun"};
  std::string y;
  y += "# Generated by gen_export (seed " + std::to_string(o.seed) + ", " +
       std::to_string(o.messages) + " messages, " + std::to_string(o.chats) +
       " chats): the agencies,\n# chats and official accounts of a synthetic Telegram export.\n";
  y += "horizon_secs: 604800\n";
  y += "citizen_replies_to_citizens: ignore\n";
  y += "ignore_accounts:\n";
  y += "  - {source: telegram, id: " + std::to_string(kBotUserId) + "}  # moderation bot\n";
  y += "agencies:\n";
  for (std::size_t a = 0; a < agencies.size(); ++a) {
    const AgencyTemplate& t = *agencies[a].tmpl;
    y += "  - id: " + agencies[a].id + "\n";
    y += "    name: " + yaml_quote(t.name) + "\n";
    y += "    timezone: " + std::string(t.timezone) + "\n";
    y += "    business_hours:\n";
    for (std::size_t d = 0; d < 7; ++d) {
      if (t.hours[d].empty()) continue;
      y += "      " + std::string(kDays[d]) + ": " + std::string(t.hours[d]) + "\n";
    }
    y += "    holidays: [\"" + std::string(t.holidays[0]) + "\", \"" +
         std::string(t.holidays[1]) + "\"]\n";
    y += "    target_business_secs: " + std::to_string(t.target_business_secs) + "\n";
    y += "    conversations:\n";
    for (const auto& c : chats) {
      if (c.agency != a) continue;
      y += "      - {source: telegram, id: " + bot_api_id(c.bare_id) + "}  # " + c.name + "\n";
    }
    y += "    accounts:\n";
    for (std::size_t k = 0; k < t.officials.size(); ++k) {
      const OfficialTemplate& of = t.officials[k];
      y += "      - {source: telegram, id: " + std::to_string(official_user_id(agencies[a], k)) +
           ", role: " + std::string(of.role) + ", name: " + yaml_quote(of.name);
      if (!of.branch.empty()) y += ", branch: " + std::string(of.branch);
      y += "}\n";
    }
    for (const auto& c : chats) {
      if (c.agency != a) continue;
      // The linked channel: its auto-forwarded posts and admins writing as it are the agency.
      y += "      - {source: telegram, id: " + bot_api_id(c.channel_bare_id) +
           ", role: channel, name: " + yaml_quote(c.channel_name) + "}\n";
    }
  }
  return y;
}

inline bool write_text_file(const std::string& path, const std::string& text) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return false;
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  return std::fclose(f) == 0 && ok;
}

}  // namespace detail

/// Writes the export (and the configuration, if asked). Same options and seed, same bytes.
inline GeneratorReport generate_export(const GeneratorOptions& o) {
  GeneratorReport report;
  if (o.chats == 0) {
    report.error = "--chats must be at least 1";
    return report;
  }
  const std::uint32_t files = std::clamp<std::uint32_t>(o.files, 1, o.chats);
  const auto agencies = detail::plan_agencies(o);
  const auto chats = detail::plan_chats(o, agencies);
  const std::int64_t span = detail::span_secs(o);

  // Whole chats go to the file with the fewest messages so far, biggest chats first.
  std::vector<std::vector<std::uint32_t>> by_file(files);
  {
    std::vector<std::uint64_t> load(files, 0);
    std::vector<std::uint32_t> order(chats.size());
    for (std::uint32_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) {
      return chats[a].messages > chats[b].messages;
    });
    for (const std::uint32_t i : order) {
      const auto f = static_cast<std::size_t>(
          std::min_element(load.begin(), load.end()) - load.begin());
      by_file[f].push_back(i);
      load[f] += chats[i].messages;
    }
    for (auto& list : by_file) std::sort(list.begin(), list.end());
  }

  std::error_code ec;
  std::filesystem::create_directories(o.out_dir, ec);
  if (ec) {
    report.error = o.out_dir + ": cannot create the directory: " + ec.message();
    return report;
  }
  for (std::uint32_t f = 0; f < files; ++f) {
    std::filesystem::path dir = o.out_dir;
    if (files > 1) dir /= "export-" + std::to_string(f + 1);
    std::filesystem::create_directories(dir, ec);
    const std::string path = (dir / "result.json").string();
    std::FILE* file = std::fopen(path.c_str(), "wb");
    if (!file) {
      report.error = path + ": cannot write";
      return report;
    }
    std::uint64_t bytes = 0;
    bool failed = false;
    {
      detail::Out out(file);
      out.put('{');
      out.first_key(1, "about");
      out.str("Here is the data you requested. Remember: Telegram is ad free, it doesn't use "
              "your data for ad targeting and doesn't sell it to others.");
      out.key(1, "personal_information");
      out.put('{');
      out.first_key(2, "user_id");
      out.num(agencies[0].official_base);
      out.key(2, "first_name");
      out.str(agencies[0].tmpl->officials[1].name);
      out.key(2, "last_name");
      out.str("");
      out.key(2, "phone_number");
      out.str("+7 *** *** ** 01");
      out.key(2, "username");
      out.str("@press_" + agencies[0].id);
      out.key(2, "bio");
      out.str("");
      out.put("\n }");
      out.key(1, "chats");
      out.put('{');
      out.first_key(2, "about");
      out.str("This page lists all chats from this export.");
      out.key(2, "list");
      out.put('[');
      bool first = true;
      for (const std::uint32_t i : by_file[f]) {
        out.put(first ? "\n   " : ",\n   ");
        first = false;
        detail::ChatWriter writer(o, chats[i], agencies, out);
        report.messages += writer.write(span);
        report.answers += writer.answers();
      }
      out.put(first ? "]" : "\n  ]");
      out.put("\n }");
      out.key(1, "left_chats");
      out.put('{');
      out.first_key(2, "about");
      out.str("This page lists all supergroups and channels from this export that you've left.");
      out.key(2, "list");
      out.put("[]\n }\n}\n");
      out.flush();
      bytes = out.written();
      failed = out.failed();
    }
    if (std::fclose(file) != 0 || failed) {
      report.error = path + ": write failed (disk full?)";
      return report;
    }
    report.bytes += bytes;
    report.files.push_back(path);
  }
  if (!o.config_out.empty()) {
    const auto parent = std::filesystem::path(o.config_out).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    if (!detail::write_text_file(o.config_out, detail::render_config(o, agencies, chats))) {
      report.error = o.config_out + ": cannot write the configuration";
    }
  }
  return report;
}

/// Whether simdjson can take the file as one document (its limit is 4 GiB − 1 bytes).
inline bool exceeds_parser_limit(std::uint64_t bytes) { return bytes > detail::kSimdjsonMaxBytes; }

}  // namespace replywatch::bench
